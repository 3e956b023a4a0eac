/**
 * A small ClickHouse Native reader for the column types gatescope writes. Values come back the way
 * ClickHouse prints them with JSONEachRow and output_format_json_quote_64bit_integers=0:
 * DateTime64(6, 'UTC') as `YYYY-MM-DD hh:mm:ss.ffffff`, UInt64 as number, Nullable as null.
 * For tests and debugging, not the hot path.
 */
export type RowValue = string | number | null | RowValue[];
export type Row = Record<string, RowValue>;

class Cursor {
  pos = 0;
  constructor(readonly buf: Buffer) {}
  need(n: number): void {
    if (this.pos + n > this.buf.length) throw new Error(`Native data truncated at ${this.pos}`);
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
  string(): string {
    const n = this.leb();
    this.need(n);
    this.pos += n;
    return this.buf.toString('utf8', this.pos - n, this.pos);
  }
}

function formatDateTime64(us: bigint): string {
  const ms = Number(us / 1000n) - (us % 1000n < 0n ? 1 : 0);
  const frac = ((us % 1_000_000n) + 1_000_000n) % 1_000_000n;
  const date = new Date(Math.floor(ms / 1000) * 1000);
  // Beyond what a JS Date holds (±275,000 years): the raw microseconds, rather than a throw.
  if (Number.isNaN(date.getTime())) return `${us} us`;
  const iso = date.toISOString(); // YYYY-MM-DDTHH:MM:SS.000Z
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)}.${frac.toString().padStart(6, '0')}`;
}

/** Reads the data of one column of `n` values of `type`. */
function readColumn(c: Cursor, type: string, n: number): RowValue[] {
  if (type.startsWith('Nullable(')) {
    c.need(n);
    const nulls = c.buf.subarray(c.pos, c.pos + n);
    c.pos += n;
    const values = readColumn(c, type.slice(9, -1), n);
    return values.map((v, i) => (nulls[i] === 0 ? v : null));
  }
  if (type.startsWith('Array(')) {
    c.need(8 * n);
    const ends: number[] = [];
    for (let i = 0; i < n; i++) ends.push(Number(c.buf.readBigUInt64LE(c.pos + 8 * i)));
    c.pos += 8 * n;
    const total = n > 0 ? ends[n - 1] : 0;
    const elements = readColumn(c, type.slice(6, -1), total);
    return ends.map((e, i) => elements.slice(i > 0 ? ends[i - 1] : 0, e));
  }
  const out: RowValue[] = new Array(n);
  if (type.startsWith('DateTime64(6')) {
    c.need(8 * n);
    for (let i = 0; i < n; i++, c.pos += 8) out[i] = formatDateTime64(c.buf.readBigInt64LE(c.pos));
    return out;
  }
  switch (type) {
    case 'String':
      for (let i = 0; i < n; i++) out[i] = c.string();
      return out;
    case 'UInt16':
      c.need(2 * n);
      for (let i = 0; i < n; i++, c.pos += 2) out[i] = c.buf.readUInt16LE(c.pos);
      return out;
    case 'UInt64':
      c.need(8 * n);
      for (let i = 0; i < n; i++, c.pos += 8) out[i] = Number(c.buf.readBigUInt64LE(c.pos));
      return out;
    case 'Float64':
      c.need(8 * n);
      for (let i = 0; i < n; i++, c.pos += 8) out[i] = c.buf.readDoubleLE(c.pos);
      return out;
    default:
      throw new Error(`unsupported Native column type ${type}`);
  }
}

export interface NativeColumn {
  name: string;
  type: string;
  values: RowValue[];
}
export interface NativeBlock {
  rows: number;
  columns: NativeColumn[];
}

/** Reads every Native block in `data` (blocks may be concatenated), column by column. */
export function readNativeBlocks(data: Buffer): NativeBlock[] {
  const c = new Cursor(data);
  const blocks: NativeBlock[] = [];
  while (c.pos < data.length) {
    const ncols = c.leb();
    const rows = c.leb();
    const columns: NativeColumn[] = [];
    for (let k = 0; k < ncols; k++) {
      const name = c.string();
      const type = c.string();
      columns.push({ name, type, values: readColumn(c, type, rows) });
    }
    blocks.push({ rows, columns });
  }
  return blocks;
}

/** Reads every row of every Native block in `data` (blocks may be concatenated). */
export function readNative(data: Buffer): Row[] {
  const rows: Row[] = [];
  for (const block of readNativeBlocks(data)) {
    for (let i = 0; i < block.rows; i++) {
      const row: Row = {};
      for (const col of block.columns) row[col.name] = col.values[i];
      rows.push(row);
    }
  }
  return rows;
}
