/**
 * Merges ClickHouse Native blocks with the same columns into one block. ClickHouse pays a fixed cost per
 * block it parses: 400 blocks of 100 rows (one per ALS message) cost the embedded engine about twice the
 * CPU of the same rows in one block, far more than merging them here. So the collector merges each batch
 * before inserting it. Column data is copied as is, except Array offsets, which are rebased.
 */

import { leb } from './native-block.js';

/**
 * How a column's data is laid out, as a list of streams: > 0 fixed width values of that many bytes, STRING
 * LEB128-prefixed strings, NULL_MAP one byte per value, OFFSETS UInt64 LE end offsets (the streams after it
 * hold as many values as the last offset says).
 */
const STRING = 0;
const NULL_MAP = -1;
const OFFSETS = -2;

const FIXED_WIDTH: Record<string, number> = {
  UInt8: 1,
  Int8: 1,
  Bool: 1,
  UInt16: 2,
  Int16: 2,
  Date: 2,
  UInt32: 4,
  Int32: 4,
  Float32: 4,
  DateTime: 4,
  Date32: 4,
  UInt64: 8,
  Int64: 8,
  Float64: 8,
};

function layout(type: string, out: number[] = []): number[] {
  if (type.startsWith('Nullable(')) {
    out.push(NULL_MAP);
    return layout(type.slice(9, -1), out);
  }
  if (type.startsWith('Array(')) {
    out.push(OFFSETS);
    return layout(type.slice(6, -1), out);
  }
  if (type === 'String') out.push(STRING);
  else if (type.startsWith('DateTime64(')) out.push(8);
  else if (type.startsWith('DateTime(')) out.push(4);
  else if (FIXED_WIDTH[type] !== undefined) out.push(FIXED_WIDTH[type]);
  else throw new Error(`concatNativeBlocks: unsupported column type ${type}`);
  return out;
}

const TWO32 = 4294967296;

function truncated(at: number): never {
  throw new Error(`Native block truncated at byte ${at}`);
}

function readLeb(buf: Buffer, pos: number): [number, number] {
  let n = 0;
  let mul = 1;
  for (;;) {
    if (pos >= buf.length) truncated(pos);
    const b = buf[pos++];
    n += (b & 0x7f) * mul;
    if (b < 0x80) return [n, pos];
    mul *= 128;
  }
}

/** The first block's columns: header bytes (name, type) and stream layout of each. */
interface Shape {
  headers: Buffer[];
  layouts: number[][];
  streams: number;
}

/**
 * Walks the blocks in `buf`, checking each has `shape` (taken from the first block seen when unset), and
 * appends for every block its row count to `rows` and the [start, end) of each stream to `ranges`.
 */
function scan(
  buf: Buffer,
  shape: { value?: Shape },
  rows: number[],
  ranges: number[],
  sources: Buffer[],
): void {
  let p = 0;
  while (p < buf.length) {
    let ncols: number;
    let nrows: number;
    [ncols, p] = readLeb(buf, p);
    [nrows, p] = readLeb(buf, p);
    const first = !shape.value;
    const s: Shape = shape.value ?? { headers: [], layouts: [], streams: 0 };
    if (!first && ncols !== s.headers.length)
      throw new Error('concatNativeBlocks: blocks have different columns');
    rows.push(nrows);
    sources.push(buf);
    for (let c = 0; c < ncols; c++) {
      const hs = p;
      let n: number;
      [n, p] = readLeb(buf, p);
      p += n;
      [n, p] = readLeb(buf, p);
      const ts = p;
      p += n;
      if (p > buf.length) truncated(buf.length);
      if (first) {
        s.headers.push(Buffer.from(buf.subarray(hs, p)));
        s.layouts.push(layout(buf.toString('utf8', ts, p)));
        s.streams += s.layouts[c].length;
      } else {
        const h = s.headers[c];
        if (h.length !== p - hs || buf.compare(h, 0, h.length, hs, p) !== 0) {
          throw new Error('concatNativeBlocks: blocks have different columns');
        }
      }
      let count = nrows;
      for (const op of s.layouts[c]) {
        const start = p;
        if (op > 0) p += op * count;
        else if (op === NULL_MAP) p += count;
        else if (op === OFFSETS) {
          p += 8 * count;
          if (p > buf.length) truncated(buf.length);
          count = count === 0 ? 0 : buf.readUInt32LE(p - 8) + buf.readUInt32LE(p - 4) * TWO32;
        } else {
          for (let i = 0; i < count; i++) {
            let len = 0;
            let mul = 1;
            for (;;) {
              if (p >= buf.length) truncated(p);
              const b = buf[p++];
              len += (b & 0x7f) * mul;
              if (b < 0x80) break;
              mul *= 128;
            }
            p += len;
          }
        }
        if (p > buf.length) truncated(buf.length);
        ranges.push(start, p);
      }
    }
    shape.value = s;
  }
}

/**
 * One Native block holding the rows of every block in `data` (each Buffer may itself hold several
 * concatenated blocks), in order. All blocks must have the same columns; empty input gives an empty Buffer.
 */
export function concatNativeBlocks(data: readonly Buffer[]): Buffer {
  const shape: { value?: Shape } = {};
  const rows: number[] = [];
  const ranges: number[] = [];
  const sources: Buffer[] = [];
  for (const d of data) scan(d, shape, rows, ranges, sources);
  const s = shape.value;
  if (!s) return Buffer.alloc(0);
  if (rows.length === 1) return data.find((d) => d.length > 0)!;
  let totalRows = 0;
  for (const r of rows) totalRows += r;
  const head = Buffer.from([...leb(s.headers.length), ...leb(totalRows)]);
  let total = head.length;
  for (const h of s.headers) total += h.length;
  for (let i = 0; i < ranges.length; i += 2) total += ranges[i + 1] - ranges[i];
  const out = Buffer.allocUnsafe(total);
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
