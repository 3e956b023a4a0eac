/**
 * Dead letters: rows that cannot go into ClickHouse as they are, kept on local disk with the reason, until an
 * operator fixed the cause and replays them (`gatescope dead-letters replay`).
 *
 * `GATESCOPE_DATA_DIR/dead-letters/<table>/<id>.native|.idx|.json`: the rows as a WAL segment (same format and
 * checksums; the header keeps the insert deduplication token, so a replay is stored once however often it runs)
 * and a JSON file saying why. Two reasons:
 * - `insert_refused`: ClickHouse refused these rows for good (a type, a constraint, too many partitions); what
 *   is left after splitting the batch down to the refused rows;
 * - `start_time_out_of_range`: entries older than the retention or further ahead than the allowed clock skew.
 *
 * Replay moves a dead letter's segment into the WAL's inbox; the collector inserts it like any batch (and, if
 * ClickHouse still refuses it, dead-letters what it refuses again).
 */
import { mkdirSync } from 'node:fs';
import { readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  indexPath,
  nativePath,
  readSegment,
  rewriteHeader,
  syncDirectory,
  writeSegment,
  type SegmentHeader,
} from './segment.js';
import { INBOX, type Segment } from './wal.js';

export type DeadLetterReason = 'insert_refused' | 'start_time_out_of_range';

export interface DeadLetterError {
  code?: number;
  name?: string;
  message: string;
}

/** What the JSON file of a dead letter holds. */
export interface DeadLetter {
  id: string;
  table: string;
  token: string;
  reason: DeadLetterReason;
  error: DeadLetterError | null;
  entries: number;
  /** Bytes on disk (data, index, this file). */
  bytes: number;
  /** ISO time it was dead-lettered. */
  created_at: string;
  /** The collector (WAL) that dead-lettered it. */
  collector: string;
}

/** A dead letter's file name: its token with anything but letters, digits, `.`, `_`, `-` as `_`. */
export const deadLetterId = (token: string) => token.replace(/[^A-Za-z0-9._-]/g, '_');

const jsonPath = (dir: string, id: string) => join(dir, `${id}.json`);

export interface DeadLetterStoreOptions {
  dir: string;
  collectorId: string;
  /** fdatasync what is written (the WAL is on). */
  durable: boolean;
  /** Bytes of dead letters kept at most; beyond, new ones are refused (the caller drops and counts them). */
  maxBytes: number;
}

export class DeadLetterStore {
  private totalBytes = 0;
  private totalFiles = 0;
  private totalEntries = 0;

  constructor(private readonly options: DeadLetterStoreOptions) {
    mkdirSync(options.dir, { recursive: true });
  }

  get bytes(): number {
    return this.totalBytes;
  }
  get files(): number {
    return this.totalFiles;
  }
  get entries(): number {
    return this.totalEntries;
  }

  /** Reads what is there (at start): the totals, and every dead letter. */
  async load(): Promise<DeadLetter[]> {
    const list = await listDeadLetters(this.options.dir);
    this.totalBytes = list.reduce((n, d) => n + d.bytes, 0);
    this.totalFiles = list.length;
    this.totalEntries = list.reduce((n, d) => n + d.entries, 0);
    return list;
  }

  private tableDir(table: string): string {
    const dir = join(this.options.dir, table);
    mkdirSync(dir, { recursive: true });
    return dir;
  }

  private describe(
    table: string,
    token: string,
    reason: DeadLetterReason,
    error: DeadLetterError | null,
    entries: number,
    bytes: number,
  ): DeadLetter {
    return {
      id: deadLetterId(token),
      table,
      token,
      reason,
      error,
      entries,
      bytes,
      created_at: new Date().toISOString(),
      collector: this.options.collectorId,
    };
  }

  private async finish(dir: string, letter: DeadLetter): Promise<DeadLetter> {
    const json = Buffer.from(JSON.stringify(letter, null, 2));
    letter.bytes += json.length;
    await writeFile(jsonPath(dir, letter.id), JSON.stringify(letter, null, 2));
    if (this.options.durable) await syncDirectory(dir);
    this.totalBytes += letter.bytes;
    this.totalFiles++;
    this.totalEntries += letter.entries;
    return letter;
  }

  /**
   * Writes rows as a new dead letter under `token` (deterministic: writing the same token again replaces it, so a
   * batch split again after a crash does not leave two). Undefined when the store is full.
   */
  async write(
    table: string,
    token: string,
    data: Buffer,
    entries: number,
    reason: DeadLetterReason,
    error: DeadLetterError | null,
  ): Promise<DeadLetter | undefined> {
    if (this.totalBytes + data.length > this.options.maxBytes) return undefined;
    const dir = this.tableDir(table);
    const id = deadLetterId(token);
    const existed = await removeDeadLetter(dir, id);
    if (existed) {
      this.totalBytes -= existed.bytes;
      this.totalFiles--;
      this.totalEntries -= existed.entries;
    }
    const header: SegmentHeader = {
      token,
      lane: table,
      createdAt: Date.now(),
      deadLetter: id,
      deadLetterReason: reason,
    };
    const s = await writeSegment(dir, id, header, data, entries, this.options.durable);
    return this.finish(dir, this.describe(table, token, reason, error, entries, s.bytes + s.indexBytes));
  }

  /** Whether `bytes` more fit under GATESCOPE_DEAD_LETTER_MAX_BYTES now. */
  fits(bytes: number): boolean {
    return this.totalBytes + bytes <= this.options.maxBytes;
  }

  /**
   * Moves a sealed WAL segment here whole (out-of-window entries), for the table `table`. Undefined when the store
   * is full (the segment is left where it is).
   */
  async park(
    segment: Segment,
    table: string,
    reason: DeadLetterReason,
    error: DeadLetterError | null,
  ): Promise<DeadLetter | undefined> {
    if (this.totalBytes + segment.bytes > this.options.maxBytes) return undefined;
    const dir = this.tableDir(table);
    const id = deadLetterId(segment.header.token);
    // The JSON first: a crash before the move leaves the segment in the WAL, parked again at the next start.
    const letter = this.describe(table, segment.header.token, reason, error, segment.rows, segment.bytes);
    await rewriteHeader(segment.dir, segment.name, {
      ...segment.header,
      lane: table,
      deadLetter: id,
      deadLetterReason: reason,
    });
    await writeFile(jsonPath(dir, id), JSON.stringify(letter, null, 2));
    await rename(nativePath(segment.dir, segment.name), nativePath(dir, id));
    await rename(indexPath(segment.dir, segment.name), indexPath(dir, id));
    this.totalBytes += letter.bytes;
    this.totalFiles++;
    this.totalEntries += letter.entries;
    if (this.options.durable) await Promise.all([syncDirectory(dir), syncDirectory(segment.dir)]);
    return letter;
  }
}

/** Every dead letter under `dir` (GATESCOPE_DATA_DIR/dead-letters), oldest first. */
export async function listDeadLetters(dir: string): Promise<DeadLetter[]> {
  const out: DeadLetter[] = [];
  let tables: string[];
  try {
    tables = await readdir(dir);
  } catch {
    return out;
  }
  for (const table of tables) {
    const tdir = join(dir, table);
    let files: string[];
    try {
      files = await readdir(tdir);
    } catch {
      continue;
    }
    for (const f of files.filter((x) => x.endsWith('.json'))) {
      const id = f.slice(0, -5);
      if (!files.includes(`${id}.native`) || !files.includes(`${id}.idx`)) continue;
      try {
        const letter = JSON.parse(await readFile(join(tdir, f), 'utf8')) as DeadLetter;
        const sizes = await Promise.all(
          [nativePath(tdir, id), indexPath(tdir, id), jsonPath(tdir, id)].map(
            async (p) => (await stat(p)).size,
          ),
        );
        out.push({ ...letter, bytes: sizes.reduce((a, b) => a + b, 0) });
      } catch {
        // unreadable JSON: listed by nothing, replayed by nothing; left for a human
      }
    }
  }
  return out.sort((a, b) => a.created_at.localeCompare(b.created_at) || a.id.localeCompare(b.id));
}

/** Removes a dead letter's files; returns what it was, if it existed. */
async function removeDeadLetter(dir: string, id: string): Promise<DeadLetter | undefined> {
  let letter: DeadLetter | undefined;
  try {
    letter = JSON.parse(await readFile(jsonPath(dir, id), 'utf8')) as DeadLetter;
  } catch {
    letter = undefined;
  }
  await Promise.all(
    [nativePath(dir, id), indexPath(dir, id), jsonPath(dir, id)].map((p) => rm(p, { force: true })),
  );
  return letter;
}

/** The rows of a dead letter (its Native data), checked against its index. */
export async function readDeadLetterRows(dir: string, letter: DeadLetter): Promise<Buffer> {
  const tdir = join(dir, letter.table);
  const r = await readSegment(tdir, letter.id);
  if (!r.ok) throw new Error(`dead letter ${letter.id} is damaged: ${r.reason}`);
  return readFile(nativePath(tdir, letter.id));
}

/**
 * Queues dead letters for replay: moves each one's segment into `<walDir>/inbox` (the data first, then the index,
 * which is what the collector looks for) and drops its JSON. The running collector adopts them within seconds;
 * otherwise the next start does.
 */
export async function requeueDeadLetters(
  deadLetterDir: string,
  walDir: string,
  letters: DeadLetter[],
): Promise<void> {
  const inbox = join(walDir, INBOX);
  mkdirSync(inbox, { recursive: true });
  for (const letter of letters) {
    const tdir = join(deadLetterDir, letter.table);
    await rename(nativePath(tdir, letter.id), nativePath(inbox, letter.id));
    await rename(indexPath(tdir, letter.id), indexPath(inbox, letter.id));
    await rm(jsonPath(tdir, letter.id), { force: true });
  }
  await syncDirectory(inbox);
}
