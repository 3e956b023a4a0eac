/**
 * A segment: one batch of rows on disk, in two files.
 *
 * - `<name>.native` holds ClickHouse Native blocks, nothing else, so the embedded engine inserts it with
 *   `INSERT … FROM INFILE` and a server gets it streamed as the body: the batch is written once.
 * - `<name>.idx` says what in it is whole: a header (magic, JSON: the batch's insert deduplication token, its
 *   lane, when its first row arrived) with its CRC-32, then one 16-byte record per appended block (bytes, rows,
 *   CRC-32 of those bytes, CRC-32 of the record itself).
 *
 * A process killed while appending, or a machine that lost power, can leave a half-written block, a torn index
 * record, or (after power loss) a tail of zeros where the file grew but its data never reached the disk. Reading
 * a segment back keeps the longest prefix of records whose bytes match their checksums and truncates both files
 * there. Everything confirmed by `sync()` lies in that prefix.
 */
import { open, readFile, rename, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';

const MAGIC = Buffer.from('GSWAL001');
const RECORD_BYTES = 16;

export interface SegmentHeader {
  /** The `insert_deduplication_token` of these rows: a retry sends the same bytes with the same token. */
  token: string;
  /** Which queue the segment belongs to: a table name, or `<table>.out-of-window`. */
  lane: string;
  /** When its first row was accepted (ms since the epoch). */
  createdAt: number;
  /** Set when the segment is a dead letter: its id (kept when it is queued for replay). */
  deadLetter?: string;
  /** Why it is a dead letter (the delivery ledger moves its entries out of that reason when a replay stores them). */
  deadLetterReason?: string;
}

export const nativePath = (dir: string, name: string) => join(dir, `${name}.native`);
export const indexPath = (dir: string, name: string) => join(dir, `${name}.idx`);

function encodeHeader(header: SegmentHeader): Buffer {
  const json = Buffer.from(JSON.stringify(header));
  const out = Buffer.alloc(MAGIC.length + 4 + json.length + 4);
  MAGIC.copy(out, 0);
  out.writeUInt32LE(json.length, MAGIC.length);
  json.copy(out, MAGIC.length + 4);
  out.writeUInt32LE(crc32(json), MAGIC.length + 4 + json.length);
  return out;
}

function encodeRecord(data: Buffer, rows: number): Buffer {
  const r = Buffer.alloc(RECORD_BYTES);
  r.writeUInt32LE(data.length, 0);
  r.writeUInt32LE(rows, 4);
  r.writeUInt32LE(crc32(data), 8);
  r.writeUInt32LE(crc32(r.subarray(0, 12)), 12);
  return r;
}

/** fsync a directory, so that files created or renamed in it survive a power loss. */
export async function syncDirectory(dir: string): Promise<void> {
  const fd = await open(dir, 'r');
  try {
    await fd.sync();
  } finally {
    await fd.close();
  }
}

/** An open segment being appended to. Appends are not durable until `sync()` resolves. */
export class SegmentWriter {
  rows = 0;
  /** Bytes of Native data appended. */
  bytes = 0;
  private indexBytes: number;
  private synced = false;

  private constructor(
    readonly dir: string,
    readonly name: string,
    readonly header: SegmentHeader,
    private readonly native: FileHandle,
    private readonly index: FileHandle,
    headerBytes: number,
  ) {
    this.indexBytes = headerBytes;
  }

  /** Creates both files (never over existing ones) and writes the index header. */
  static async create(dir: string, name: string, header: SegmentHeader): Promise<SegmentWriter> {
    const native = await open(nativePath(dir, name), 'wx');
    let index: FileHandle;
    try {
      index = await open(indexPath(dir, name), 'wx');
    } catch (err) {
      await native.close();
      throw err;
    }
    const head = encodeHeader(header);
    await index.write(head, 0, head.length, 0);
    return new SegmentWriter(dir, name, header, native, index, head.length);
  }

  get file(): string {
    return nativePath(this.dir, this.name);
  }

  /** Bytes on disk: data and index. */
  get diskBytes(): number {
    return this.bytes + this.indexBytes;
  }

  /** Appends one block (or several concatenated) and its index record. */
  async append(data: Buffer, rows: number): Promise<void> {
    const record = encodeRecord(data, rows);
    await Promise.all([
      this.native.write(data, 0, data.length, this.bytes),
      this.index.write(record, 0, record.length, this.indexBytes),
    ]);
    this.bytes += data.length;
    this.indexBytes += record.length;
    this.rows += rows;
  }

  /** Makes every append so far durable (fdatasync both files; the directory entry on the first call). */
  async sync(): Promise<void> {
    await Promise.all([this.native.datasync(), this.index.datasync()]);
    if (!this.synced) {
      await syncDirectory(this.dir);
      this.synced = true;
    }
  }

  async close(): Promise<void> {
    await Promise.all([this.native.close(), this.index.close()]);
  }
}

/** A segment as read back from disk. */
export interface StoredSegment {
  dir: string;
  name: string;
  header: SegmentHeader;
  rows: number;
  /** Native bytes (the valid prefix). */
  bytes: number;
  /** Index bytes (the valid prefix). */
  indexBytes: number;
  /** Bytes cut off a torn or corrupt tail, data and index together (0 when the segment was whole). */
  truncatedBytes: number;
  /** Blocks in the valid prefix. */
  blocks: number;
}

export type ReadSegmentResult =
  { ok: true; segment: StoredSegment } | { ok: false; reason: string; bytes: number };

/**
 * Reads a segment's index, checks every record against the data, and truncates both files after the last whole
 * block. A segment without a readable header, or with no whole block, holds nothing that was ever durable:
 * `ok: false` (the caller removes it).
 */
export async function readSegment(dir: string, name: string): Promise<ReadSegmentResult> {
  const idxFile = indexPath(dir, name);
  const dataFile = nativePath(dir, name);
  let index: Buffer;
  let dataSize: number;
  try {
    index = await readFile(idxFile);
  } catch {
    return { ok: false, reason: 'no index file', bytes: await sizeOf(dataFile) };
  }
  try {
    dataSize = (await stat(dataFile)).size;
  } catch {
    return { ok: false, reason: 'no data file', bytes: index.length };
  }
  const lost = (reason: string) => ({ ok: false as const, reason, bytes: index.length + dataSize });
  if (index.length < MAGIC.length + 8 || !index.subarray(0, MAGIC.length).equals(MAGIC))
    return lost('index header torn or not a gatescope WAL segment');
  const jsonLength = index.readUInt32LE(MAGIC.length);
  const headerEnd = MAGIC.length + 4 + jsonLength + 4;
  if (headerEnd > index.length) return lost('index header torn');
  const json = index.subarray(MAGIC.length + 4, MAGIC.length + 4 + jsonLength);
  if (crc32(json) !== index.readUInt32LE(headerEnd - 4)) return lost('index header checksum mismatch');
  let header: SegmentHeader;
  try {
    header = JSON.parse(json.toString()) as SegmentHeader;
  } catch {
    return lost('index header is not JSON');
  }
  const fd = await open(dataFile, 'r+');
  try {
    let offset = 0;
    let rows = 0;
    let blocks = 0;
    let at = headerEnd;
    for (; at + RECORD_BYTES <= index.length; at += RECORD_BYTES) {
      const record = index.subarray(at, at + RECORD_BYTES);
      if (crc32(record.subarray(0, 12)) !== record.readUInt32LE(12)) break;
      const length = record.readUInt32LE(0);
      if (offset + length > dataSize) break;
      const data = Buffer.allocUnsafe(length);
      await fd.read(data, 0, length, offset);
      if (crc32(data) !== record.readUInt32LE(8)) break;
      offset += length;
      rows += record.readUInt32LE(4);
      blocks++;
    }
    const truncatedBytes = dataSize - offset + (index.length - at);
    if (truncatedBytes > 0) {
      await fd.truncate(offset);
      await fd.datasync();
      const ifd = await open(idxFile, 'r+');
      try {
        await ifd.truncate(at);
        await ifd.datasync();
      } finally {
        await ifd.close();
      }
    }
    if (blocks === 0) return { ok: false, reason: 'no whole block', bytes: index.length + dataSize };
    return {
      ok: true,
      segment: { dir, name, header, rows, bytes: offset, indexBytes: at, truncatedBytes, blocks },
    };
  } finally {
    await fd.close();
  }
}

async function sizeOf(file: string): Promise<number> {
  try {
    return (await stat(file)).size;
  } catch {
    return 0;
  }
}

/** Writes a whole segment at once (a dead letter, a split piece): data, index, sync, close. */
export async function writeSegment(
  dir: string,
  name: string,
  header: SegmentHeader,
  data: Buffer,
  rows: number,
  sync: boolean,
): Promise<StoredSegment> {
  const w = await SegmentWriter.create(dir, name, header);
  try {
    await w.append(data, rows);
    if (sync) await w.sync();
  } finally {
    await w.close();
  }
  return {
    dir,
    name,
    header,
    rows,
    bytes: w.bytes,
    indexBytes: w.diskBytes - w.bytes,
    truncatedBytes: 0,
    blocks: 1,
  };
}

/** Replaces a segment's index header (keeping its records): write a copy, then rename it over the index. */
export async function rewriteHeader(dir: string, name: string, header: SegmentHeader): Promise<void> {
  const index = await readFile(indexPath(dir, name));
  const jsonLength = index.readUInt32LE(MAGIC.length);
  const records = index.subarray(MAGIC.length + 4 + jsonLength + 4);
  const tmp = `${indexPath(dir, name)}.tmp`;
  const fd = await open(tmp, 'w');
  try {
    await fd.writeFile(Buffer.concat([encodeHeader(header), records]));
    await fd.datasync();
  } finally {
    await fd.close();
  }
  await rename(tmp, indexPath(dir, name));
}
