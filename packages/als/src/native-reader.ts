/**
 * A small RowBinary reader for the column types gatescope writes. Values come back the way
 * ClickHouse prints them with JSONEachRow and output_format_json_quote_64bit_integers=0:
 * DateTime64(6, 'UTC') as `YYYY-MM-DD hh:mm:ss.ffffff`, UInt64 as number, Nullable as null.
 * For tests and debugging, not the hot path.
 */
import type { ColumnSpec } from './columns.js';

export type RowValue = string | number | null | RowValue[];
export type Row = Record<string, RowValue>;

class Cursor {
  pos = 0;
  constructor(readonly buf: Buffer) {}
  need(n: number): void {
    if (this.pos + n > this.buf.length) throw new Error(`RowBinary truncated at ${this.pos}`);
  }
  leb(): number {
    let n = 0;
    let mul = 1;
    for (;;) {
      this.need(1);
      const b = this.buf[this.pos++];
      n += (b & 0x7f) * mul;
      if (b < 0x80) return n;
      mul *= 128;
    }
  }
}

function formatDateTime64(us: bigint): string {
  const ms = Number(us / 1000n) - (us % 1000n < 0n ? 1 : 0);
  const frac = ((us % 1_000_000n) + 1_000_000n) % 1_000_000n;
  const iso = new Date(Math.floor(ms / 1000) * 1000).toISOString(); // YYYY-MM-DDTHH:MM:SS.000Z
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)}.${frac.toString().padStart(6, '0')}`;
}

function readValue(c: Cursor, type: string): RowValue {
  if (type.startsWith('LowCardinality(')) return readValue(c, type.slice(15, -1));
  if (type.startsWith('Nullable(')) {
    c.need(1);
    if (c.buf[c.pos++] === 1) return null;
    return readValue(c, type.slice(9, -1));
  }
  if (type.startsWith('Array(')) {
    const n = c.leb();
    const out: RowValue[] = [];
    for (let i = 0; i < n; i++) out.push(readValue(c, type.slice(6, -1)));
    return out;
  }
  if (type.startsWith('DateTime64(6')) {
    c.need(8);
    const v = c.buf.readBigInt64LE(c.pos);
    c.pos += 8;
    return formatDateTime64(v);
  }
  switch (type) {
    case 'String': {
      const n = c.leb();
      c.need(n);
      const s = c.buf.toString('utf8', c.pos, c.pos + n);
      c.pos += n;
      return s;
    }
    case 'UInt16':
      c.need(2);
      c.pos += 2;
      return c.buf.readUInt16LE(c.pos - 2);
    case 'UInt64':
      c.need(8);
      c.pos += 8;
      return Number(c.buf.readBigUInt64LE(c.pos - 8));
    case 'Float64':
      c.need(8);
      c.pos += 8;
      return c.buf.readDoubleLE(c.pos - 8);
    default:
      throw new Error(`unsupported RowBinary type ${type}`);
  }
}

/** Reads every row in `data` laid out as `columns`. */
export function readRowBinary(data: Buffer, columns: readonly ColumnSpec[]): Row[] {
  const c = new Cursor(data);
  const rows: Row[] = [];
  while (c.pos < data.length) {
    const row: Row = {};
    for (const col of columns) row[col.name] = readValue(c, col.type);
    rows.push(row);
  }
  return rows;
}
