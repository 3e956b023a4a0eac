/**
 * A growable byte buffer holding one column of a ClickHouse Native block: the column's values in
 * ClickHouse's binary encoding (LEB128-prefixed strings, little-endian numbers), or, for a
 * Nullable/Array column, its null map / UInt64 end offsets.
 */
const TWO32 = 4294967296;

export class ColumnBuffer {
  buf: Buffer;
  pos = 0;
  /** Array offsets only: the number of elements written so far (the last end offset). */
  count = 0;

  constructor(initialBytes: number) {
    this.buf = Buffer.allocUnsafe(Math.max(64, initialBytes));
  }

  ensure(n: number): void {
    if (this.pos + n > this.buf.length) this.grow(n);
  }

  private grow(n: number): void {
    let cap = this.buf.length * 2;
    while (cap < this.pos + n) cap *= 2;
    const next = Buffer.allocUnsafe(cap);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  writeByte(b: number): void {
    if (this.pos >= this.buf.length) this.grow(1);
    this.buf[this.pos++] = b;
  }

  /** Unsigned LEB128 (String lengths). */
  writeLength(n: number): void {
    this.ensure(10);
    const buf = this.buf;
    let p = this.pos;
    while (n >= 0x80) {
      buf[p++] = (n & 0x7f) | 0x80;
      n = Math.floor(n / 128);
    }
    buf[p++] = n;
    this.pos = p;
  }

  writeEmpty(): void {
    this.writeByte(0);
  }

  /** Copies src[s, e) without a length prefix. */
  writeRaw(src: Uint8Array, s: number, e: number): void {
    const n = e - s;
    this.ensure(n);
    const buf = this.buf;
    let p = this.pos;
    if (n < 128) {
      for (let i = s; i < e; i++) buf[p++] = src[i];
    } else {
      buf.set(src.subarray(s, e), p);
      p += n;
    }
    this.pos = p;
  }

  /** `b` written `n` times over (one native fill, however many rows). */
  writeRepeated(b: Uint8Array, n: number): void {
    const len = b.length * n;
    if (len === 0) return;
    this.ensure(len);
    this.buf.fill(b, this.pos, this.pos + len);
    this.pos += len;
  }

  /** A String from src[s, e). */
  writeSlice(src: Uint8Array, s: number, e: number): void {
    this.writeLength(e - s);
    this.writeRaw(src, s, e);
  }

  /** A String holding all of `b`. */
  writeBytes(b: Uint8Array): void {
    this.writeLength(b.length);
    this.writeRaw(b, 0, b.length);
  }

  writeUInt16(v: number): void {
    this.ensure(2);
    const buf = this.buf;
    buf[this.pos] = v & 0xff;
    buf[this.pos + 1] = (v >>> 8) & 0xff;
    this.pos += 2;
  }

  writeUInt32Pair(lo: number, hi: number): void {
    this.ensure(8);
    const buf = this.buf;
    const p = this.pos;
    buf[p] = lo & 0xff;
    buf[p + 1] = (lo >>> 8) & 0xff;
    buf[p + 2] = (lo >>> 16) & 0xff;
    buf[p + 3] = lo >>> 24;
    buf[p + 4] = hi & 0xff;
    buf[p + 5] = (hi >>> 8) & 0xff;
    buf[p + 6] = (hi >>> 16) & 0xff;
    buf[p + 7] = hi >>> 24;
    this.pos = p + 8;
  }

  /** Int64 little-endian from an integral number (|v| < 2^53). */
  writeInt64(v: number): void {
    const hi = Math.floor(v / TWO32);
    const lo = v - hi * TWO32;
    this.writeUInt32Pair(lo >>> 0, hi >>> 0);
  }

  writeFloat64(v: number): void {
    this.ensure(8);
    this.buf.writeDoubleLE(v, this.pos);
    this.pos += 8;
  }

  /** Decimal digits of a non-negative integer, as ASCII, no prefix. */
  writeAsciiNumber(n: number): void {
    if (n < 10) {
      this.writeByte(0x30 + n);
      return;
    }
    const s = String(n);
    this.ensure(s.length);
    for (let i = 0; i < s.length; i++) this.buf[this.pos++] = s.charCodeAt(i);
  }
}
