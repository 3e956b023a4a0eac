/**
 * Picks rows out of Native data: the collector splits a batch ClickHouse refused (by partition, then in halves)
 * so that the rows it accepts land and only the ones it refuses are dead-lettered. Not the hot path: a batch is
 * merged into one block first, then every stream is copied range by range.
 */

import { leb } from './native-block.js';
import { concatNativeBlocks } from './native-concat.js';
import { NULL_MAP, OFFSETS, readLeb, scan, STRING, TWO32, type Shape } from './native-layout.js';

const readU64 = (b: Buffer, at: number) => b.readUInt32LE(at) + b.readUInt32LE(at + 4) * TWO32;

/** One block of `data` (several blocks are merged): its row count, shape and each stream's [start, end). */
function oneBlock(
  data: Buffer,
  streams?: Uint32Array,
): { buf: Buffer; rows: number; shape: Shape; ranges: number[] } {
  const buf = concatNativeBlocks([data], [streams]);
  const shape: { value?: Shape } = {};
  const rows: number[] = [];
  const ranges: number[] = [];
  scan(buf, shape, rows, ranges, [], streams && buf === data ? streams : undefined);
  if (!shape.value) throw new Error('Native data holds no block');
  return { buf, rows: rows[0], shape: shape.value, ranges };
}

/**
 * A Native block of the rows `rows` (indices into all rows of `data`, in the order given; several blocks
 * are read as one) with the same columns.
 */
export function selectNativeRows(data: Buffer, rows: ArrayLike<number>, streams?: Uint32Array): Buffer {
  const { buf, rows: total, shape, ranges } = oneBlock(data, streams);
  for (let i = 0; i < rows.length; i++) {
    if (!(rows[i] >= 0 && rows[i] < total)) throw new RangeError(`row ${rows[i]} not in 0..${total - 1}`);
  }
  const parts: Buffer[] = [Buffer.from([...leb(shape.headers.length), ...leb(rows.length)])];
  let stream = 0;
  for (let c = 0; c < shape.headers.length; c++) {
    parts.push(shape.headers[c]);
    // Element ranges [start, end) selected at the current nesting level, and how many elements it holds.
    let sel: number[] = [];
    for (let i = 0; i < rows.length; i++) sel.push(rows[i], rows[i] + 1);
    let count = total;
    for (const op of shape.layouts[c]) {
      const start = ranges[2 * stream];
      const end = ranges[2 * stream + 1];
      stream++;
      if (op > 0 || op === NULL_MAP) {
        const w = op > 0 ? op : 1;
        for (let i = 0; i < sel.length; i += 2)
          parts.push(buf.subarray(start + sel[i] * w, start + sel[i + 1] * w));
      } else if (op === STRING) {
        // Where each string starts (and where the last ends).
        const at = new Uint32Array(count + 1);
        let p = start;
        for (let i = 0; i < count; i++) {
          at[i] = p;
          let len: number;
          [len, p] = readLeb(buf, p);
          p += len;
        }
        at[count] = p;
        if (p !== end) throw new Error('Native string stream does not end where expected');
        for (let i = 0; i < sel.length; i += 2) parts.push(buf.subarray(at[sel[i]], at[sel[i + 1]]));
      } else if (op === OFFSETS) {
        const endOf = (i: number) => (i === 0 ? 0 : readU64(buf, start + 8 * (i - 1)));
        const next: number[] = [];
        let base = 0;
        const offsets: Buffer[] = [];
        for (let i = 0; i < sel.length; i += 2) {
          const o = Buffer.allocUnsafe(8 * (sel[i + 1] - sel[i]));
          for (let r = sel[i], k = 0; r < sel[i + 1]; r++, k += 8) {
            base += endOf(r + 1) - endOf(r);
            o.writeUInt32LE(base % TWO32, k);
            o.writeUInt32LE(Math.floor(base / TWO32), k + 4);
          }
          offsets.push(o);
          next.push(endOf(sel[i]), endOf(sel[i + 1]));
        }
        parts.push(...offsets);
        count = endOf(count);
        sel = next;
      }
    }
  }
  return Buffer.concat(parts);
}

/** The day (days since 1970-01-01, UTC) of each row's `DateTime64` column `column`: its daily partition. */
export function nativeRowDays(data: Buffer, column = 'start_time'): Int32Array {
  const { buf, rows, shape, ranges } = oneBlock(data);
  let stream = 0;
  for (let c = 0; c < shape.headers.length; c++) {
    const h = shape.headers[c];
    let n: number;
    let p: number;
    [n, p] = readLeb(h, 0);
    const name = h.toString('utf8', p, p + n);
    [n, p] = readLeb(h, p + n);
    const type = h.toString('utf8', p, p + n);
    if (name === column) {
      const m = /^DateTime64\((\d+)/.exec(type);
      if (!m || shape.layouts[c].length !== 1) throw new Error(`column ${column} is ${type}, not DateTime64`);
      const perDay = 86_400 * 10 ** Number(m[1]);
      const start = ranges[2 * stream];
      const days = new Int32Array(rows);
      for (let i = 0; i < rows; i++) days[i] = Math.floor(Number(buf.readBigInt64LE(start + 8 * i)) / perDay);
      return days;
    }
    stream += shape.layouts[c].length;
  }
  throw new Error(`Native data has no column ${column}`);
}

/**
 * The values of the String columns `columns` of Native data (several blocks are read as one), one array per column
 * in the order given, row by row. `streams`: the single block's stream ranges, when known (no walk to find them).
 */
export function nativeStringColumns(
  data: Buffer,
  columns: readonly string[],
  streams?: Uint32Array,
): string[][] {
  const values: string[][] = columns.map(() => []);
  if (data.length === 0) return values;
  const { buf, rows, shape, ranges } = oneBlock(data, streams);
  let stream = 0;
  for (let c = 0; c < shape.headers.length; c++) {
    const h = shape.headers[c];
    const [n, p] = readLeb(h, 0);
    const name = h.toString('utf8', p, p + n);
    const wanted = columns.indexOf(name);
    if (wanted >= 0) {
      if (shape.layouts[c].length !== 1 || shape.layouts[c][0] !== STRING)
        throw new Error(`column ${name} is not a String column`);
      const column = values[wanted];
      let at = ranges[2 * stream];
      for (let i = 0; i < rows; i++) {
        let len: number;
        [len, at] = readLeb(buf, at);
        column.push(buf.toString('utf8', at, at + len));
        at += len;
      }
    }
    stream += shape.layouts[c].length;
  }
  values.forEach((v, i) => {
    if (v.length !== rows) throw new Error(`Native data has no column ${columns[i]}`);
  });
  return values;
}

/** Rows whose value in one of `columns` (String columns) is one of `values`. */
export interface StringMatch {
  columns: readonly string[];
  values: readonly string[];
}

/**
 * The indices (ascending) of the rows of Native data that pass every clause of `match`. Values are compared as bytes,
 * in place: no string is made, and columns no clause names are not read. `streams`: as for nativeStringColumns.
 */
export function nativeMatchRows(
  data: Buffer,
  match: readonly StringMatch[],
  streams?: Uint32Array,
): number[] {
  if (data.length === 0) return [];
  const { buf, rows, shape, ranges } = oneBlock(data, streams);
  const starts = new Map<string, number>();
  let stream = 0;
  for (let c = 0; c < shape.headers.length; c++) {
    const h = shape.headers[c];
    const [n, p] = readLeb(h, 0);
    if (shape.layouts[c].length === 1 && shape.layouts[c][0] === STRING)
      starts.set(h.toString('utf8', p, p + n), ranges[2 * stream]);
    stream += shape.layouts[c].length;
  }
  const pass = new Uint8Array(rows).fill(1);
  for (const clause of match) {
    const values = clause.values.map((v) => Buffer.from(v, 'utf8'));
    const hit = new Uint8Array(rows);
    for (const column of clause.columns) {
      let at = starts.get(column);
      if (at === undefined) throw new Error(`Native data has no String column ${column}`);
      for (let i = 0; i < rows; i++) {
        let len = buf[at];
        if (len < 0x80) at++;
        else [len, at] = readLeb(buf, at);
        if (pass[i] === 1 && hit[i] === 0) {
          for (const v of values)
            if (v.length === len && buf.compare(v, 0, len, at, at + len) === 0) {
              hit[i] = 1;
              break;
            }
        }
        at += len;
      }
    }
    for (let i = 0; i < rows; i++) pass[i] &= hit[i];
  }
  const out: number[] = [];
  for (let i = 0; i < rows; i++) if (pass[i] === 1) out.push(i);
  return out;
}

/**
 * Rows per distinct tuple of the String columns `columns` (the tuple as a JSON array, in the order given): the
 * write-ahead log counts a replayed batch's entries per gateway node with it. Not the hot path (live batches
 * are counted as they are added).
 */
export function nativeRowKeys(data: Buffer, columns: readonly string[]): Map<string, number> {
  const out = new Map<string, number>();
  const values = nativeStringColumns(data, columns);
  const rows = values[0]?.length ?? 0;
  for (let i = 0; i < rows; i++) {
    const key = JSON.stringify(values.map((v) => v[i]));
    out.set(key, (out.get(key) ?? 0) + 1);
  }
  return out;
}
