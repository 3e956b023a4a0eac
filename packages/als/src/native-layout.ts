/**
 * The layout of the Native blocks gatescope writes, shared by the functions that merge and split them: how a
 * column's data is laid out, as a list of streams, and a scanner that finds each block's streams.
 */

/**
 * How a column's data is laid out, as a list of streams: > 0 fixed width values of that many bytes, STRING
 * LEB128-prefixed strings, NULL_MAP one byte per value, OFFSETS UInt64 LE end offsets (the streams after it
 * hold as many values as the last offset says).
 */
export const STRING = 0;
export const NULL_MAP = -1;
export const OFFSETS = -2;

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

export function layout(type: string, out: number[] = []): number[] {
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
  else throw new Error(`Native: unsupported column type ${type}`);
  return out;
}

export const TWO32 = 4294967296;

function truncated(at: number): never {
  throw new Error(`Native block truncated at byte ${at}`);
}

export function readLeb(buf: Buffer, pos: number): [number, number] {
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
export interface Shape {
  headers: Buffer[];
  layouts: number[][];
  streams: number;
}

/**
 * Walks the blocks in `buf`, checking each has `shape` (taken from the first block seen when unset), and
 * appends for every block its row count to `rows` and the [start, end) of each stream to `ranges`.
 */
export function scan(
  buf: Buffer,
  shape: { value?: Shape },
  rows: number[],
  ranges: number[],
  sources: Buffer[],
  known?: Uint32Array,
): void {
  let p = 0;
  while (p < buf.length) {
    // The writer's own stream ranges (NativeBlockWriter.take), when `buf` is the one block they describe: strings
    // need not be walked to find where their stream ends.
    const streams = p === 0 ? known : undefined;
    let si = 0;
    let ncols: number;
    let nrows: number;
    [ncols, p] = readLeb(buf, p);
    [nrows, p] = readLeb(buf, p);
    const first = !shape.value;
    const s: Shape = shape.value ?? { headers: [], layouts: [], streams: 0 };
    if (!first && ncols !== s.headers.length) throw new Error('Native blocks have different columns');
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
          throw new Error('Native blocks have different columns');
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
        } else if (streams) {
          p = Math.min(streams[2 * si + 1], buf.length);
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
        if (streams && (streams[2 * si] !== start || streams[2 * si + 1] !== p))
          throw new Error('Native block does not match its stream ranges');
        ranges.push(start, p);
        si++;
      }
    }
    shape.value = s;
  }
}
