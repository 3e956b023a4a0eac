/**
 * Merges ClickHouse Native blocks with the same columns into one block. ClickHouse pays a fixed cost per
 * block it parses: 400 blocks of 100 rows (one per ALS message) cost the embedded engine about twice the
 * CPU of the same rows in one block, far more than merging them here. So the collector merges each batch
 * before inserting it. Column data is copied as is, except Array offsets, which are rebased.
 */

import { leb } from './native-block.js';
import { OFFSETS, scan, TWO32, type Shape } from './native-layout.js';

/**
 * One Native block holding the rows of every block in `data` (each Buffer may itself hold several
 * concatenated blocks), in order. All blocks must have the same columns; empty input gives an empty Buffer.
 * `streams[i]`, when known, are the stream ranges of the single block `data[i]` (NativeBlockWriter.take): finding
 * where each String stream ends is then free instead of a walk over every string. `allocate` gives the output
 * buffer (a caller may hand out memory it reuses).
 */
export function concatNativeBlocks(
  data: readonly Buffer[],
  streams?: readonly (Uint32Array | undefined)[],
  allocate: (bytes: number) => Buffer = Buffer.allocUnsafe,
): Buffer {
  const shape: { value?: Shape } = {};
  const rows: number[] = [];
  const ranges: number[] = [];
  const sources: Buffer[] = [];
  for (let i = 0; i < data.length; i++) scan(data[i], shape, rows, ranges, sources, streams?.[i]);
  const s = shape.value;
  if (!s) return Buffer.alloc(0);
  if (rows.length === 1) return data.find((d) => d.length > 0)!;
  let totalRows = 0;
  for (const r of rows) totalRows += r;
  const head = Buffer.from([...leb(s.headers.length), ...leb(totalRows)]);
  let total = head.length;
  for (const h of s.headers) total += h.length;
  for (let i = 0; i < ranges.length; i += 2) total += ranges[i + 1] - ranges[i];
  const out = allocate(total);
  let p = head.copy(out, 0);
  const nBlocks = rows.length;
  let stream = 0;
  for (let c = 0; c < s.headers.length; c++) {
    p += s.headers[c].copy(out, p);
    for (const op of s.layouts[c]) {
      let base = 0;
      for (let b = 0; b < nBlocks; b++) {
        const src = sources[b];
        const at = 2 * (b * s.streams + stream);
        const start = ranges[at];
        const end = ranges[at + 1];
        if (op !== OFFSETS || base === 0) {
          p += src.copy(out, p, start, end);
        } else {
          for (let q = start; q < end; q += 8, p += 8) {
            const v = src.readUInt32LE(q) + src.readUInt32LE(q + 4) * TWO32 + base;
            out.writeUInt32LE(v % TWO32, p);
            out.writeUInt32LE(Math.floor(v / TWO32), p + 4);
          }
        }
        if (op === OFFSETS && end > start)
          base += src.readUInt32LE(end - 8) + src.readUInt32LE(end - 4) * TWO32;
      }
      stream++;
    }
  }
  return out;
}
