/**
 * Rows of one table accumulated column by column and handed over as one ClickHouse Native block
 * (https://clickhouse.com/docs/interfaces/formats/Native): LEB128 column count, LEB128 row count,
 * then per column its name, its type (both LEB128-prefixed strings) and its data.
 *
 * Each column has a value buffer; Nullable columns also have a null map (1 byte per row) and Array
 * columns an offsets buffer (UInt64 LE cumulative end offset per row), written before the values.
 * The header declares `LowCardinality(T)` columns as plain `T`: ClickHouse converts on INSERT, and
 * parsing plain strings is much cheaper for it than RowBinary.
 */
import type { ColumnSpec } from './columns.js';
import { ColumnBuffer } from './column-buffer.js';

/** The type a Native block declares for a column: LowCardinality(...) wrappers dropped at any depth. */
export function nativeType(type: string): string {
  return type.replace(/LowCardinality\(([^()]*)\)/g, '$1');
}

/** Unsigned LEB128 (= a protobuf varint), as Native block headers count columns and rows. */
export function leb(n: number): number[] {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
}

function nativeString(s: string): Buffer {
  const b = Buffer.from(s, 'utf8');
  return Buffer.concat([Buffer.from(leb(b.length)), b]);
}

/**
 * Rows as one Native block, and where each of its data streams lies (`[start, end)` byte pairs, in Native order):
 * concatNativeBlocks merges blocks whose streams are known without walking their strings.
 */
export interface NativeData {
  rows: number;
  data: Buffer;
  streams?: Uint32Array;
}

export class NativeBlockWriter {
  /** Value buffer per column, in `columns` order. */
  readonly values: ColumnBuffer[];
  /** Null map (Nullable) or end offsets (Array) per column; undefined for plain columns. */
  readonly prefix: (ColumnBuffer | undefined)[];
  rows = 0;
  private readonly headers: Buffer[];
  private readonly buffers: ColumnBuffer[];
  private readonly markPos: Int32Array;
  private readonly markCount: Float64Array;
  private markRows = 0;

  constructor(columns: readonly ColumnSpec[], initialBytes: number) {
    const per = Math.max(64, Math.floor(initialBytes / columns.length));
    this.values = columns.map(() => new ColumnBuffer(per));
    this.prefix = columns.map((c) =>
      c.type.startsWith('Nullable(') || c.type.startsWith('Array(') ? new ColumnBuffer(per) : undefined,
    );
    this.headers = columns.map((c) =>
      Buffer.concat([nativeString(c.name), nativeString(nativeType(c.type))]),
    );
    // Native order per column: prefix (null map / offsets) then values.
    this.buffers = [];
    for (let i = 0; i < columns.length; i++) {
      const p = this.prefix[i];
      if (p) this.buffers.push(p);
      this.buffers.push(this.values[i]);
    }
    this.markPos = new Int32Array(this.buffers.length);
    this.markCount = new Float64Array(this.buffers.length);
  }

  /** Bytes of column data written so far. */
  get bytes(): number {
    let n = 0;
    for (const b of this.buffers) n += b.pos;
    return n;
  }

  /** Remembers the current end of every column (start of a message). */
  mark(): void {
    const bs = this.buffers;
    for (let i = 0; i < bs.length; i++) {
      this.markPos[i] = bs[i].pos;
      this.markCount[i] = bs[i].count;
    }
    this.markRows = this.rows;
  }

  /** Rows written since `mark()`. */
  get rowsSinceMark(): number {
    return this.rows - this.markRows;
  }

  /** Drops everything written since `mark()`. */
  rollback(): void {
    const bs = this.buffers;
    for (let i = 0; i < bs.length; i++) {
      bs[i].pos = this.markPos[i];
      bs[i].count = this.markCount[i];
    }
    this.rows = this.markRows;
  }

  /**
   * Hands over the rows written so far as one Native block and starts over (the column buffers are
   * reused). The returned Buffer owns its own exactly-sized ArrayBuffer, so it can be transferred.
   */
  take(): NativeData {
    const rows = this.rows;
    const head = Buffer.from([...leb(this.headers.length), ...leb(rows)]);
    let total = head.length;
    for (const h of this.headers) total += h.length;
    for (const b of this.buffers) total += b.pos;
    // Not zero-filled (every byte is written below), not from the shared pool (it must own its ArrayBuffer).
    const data = Buffer.allocUnsafeSlow(total);
    const streams = new Uint32Array(2 * this.buffers.length);
    data.set(head, 0);
    let p = head.length;
    let bi = 0;
    for (let i = 0; i < this.headers.length; i++) {
      data.set(this.headers[i], p);
      p += this.headers[i].length;
      const n = this.prefix[i] ? 2 : 1;
      for (let k = 0; k < n; k++, bi++) {
        const b = this.buffers[bi];
        streams[2 * bi] = p;
        data.set(b.buf.subarray(0, b.pos), p);
        p += b.pos;
        streams[2 * bi + 1] = p;
        b.pos = 0;
        b.count = 0;
      }
    }
    this.rows = 0;
    return { rows, data, streams };
  }
}
