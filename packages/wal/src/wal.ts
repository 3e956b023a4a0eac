/**
 * The collector's write-ahead log: every accepted row is on local disk before it counts as accepted, and leaves
 * only once ClickHouse committed it.
 *
 * Layout under `dir` (GATESCOPE_DATA_DIR/wal):
 *   LOCK, collector-id          the owner of the directory, and this collector's stable name
 *   <lane>/<seq>.native|.idx    segments waiting for ClickHouse, one lane per table (and one per table for
 *                               entries outside the start_time window, which are dead-lettered instead)
 *   inbox/<id>.native|.idx      dead letters queued for replay (`gatescope dead-letters replay`), adopted by
 *                               the running collector or the next start
 *
 * Rows are added in memory (`add`) and written by group commit (`commit`, on the collector's interval): per lane,
 * the Native blocks since the last commit are merged into one block, appended to the lane's open segment, and
 * every touched file is fdatasync'ed together. Rows count as durable when that resolves. The caller seals a lane's
 * open segment when it is a batch (by rows or age), inserts it with its token, and removes it.
 *
 * A segment's name is a sequence number, increasing across restarts, so replay keeps the order rows arrived in.
 * Its token (`<collector>:<epoch>:<seq>`) is in its index header: a new epoch per start means a token is never
 * reused for other rows, whatever ClickHouse remembers.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { open as openFile, readdir, readFile, rename, rm } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { concatNativeBlocks, nativeRowKeys } from '@gatescope/als';
import { lockDirectory, type DirectoryLock, type LockOptions } from './lock.js';
import {
  indexPath,
  nativePath,
  readSegment,
  SegmentWriter,
  syncDirectory,
  type SegmentHeader,
} from './segment.js';

export const INBOX = 'inbox';
const SEQ_DIGITS = 16;
const seqName = (seq: number) => String(seq).padStart(SEQ_DIGITS, '0');

/** A sealed segment: a batch ready for ClickHouse (or, in an out-of-window lane, for the dead letters). */
export interface Segment {
  lane: string;
  seq: number;
  dir: string;
  name: string;
  /** The Native file (INSERT … FROM INFILE reads it; a server gets it streamed). */
  file: string;
  header: SegmentHeader;
  rows: number;
  /** Bytes on disk, data and index. */
  bytes: number;
  /** Read back at start (or adopted from the inbox) rather than written by this process. */
  replayed: boolean;
  /**
   * Rows per key (the key `add` was given; for a segment read back at start, the tuple of `tallyColumns` as a JSON
   * array). The delivery ledger counts entries per gateway node with it.
   */
  tally: Map<string, number>;
  /** Counted in `inFlight()`: every segment but a dead letter queued for replay (its rows count as dead-lettered). */
  inFlight: boolean;
  /** What `markResolved` recorded before a crash: the outcome is known, only its bookkeeping was not finished. */
  resolution?: unknown;
}

export interface WalOptions {
  dir: string;
  /**
   * fdatasync at every commit, and replay what an earlier process left. Off: the segments are only the spool
   * files the inserts read, and whatever an earlier process left is discarded at open.
   */
  durable: boolean;
  now?: () => number;
  /** The directory lock's lease (tests). */
  lock?: LockOptions;
  /** String columns whose tuple keys the tally of a segment read back at start (the live ones use `add`'s key). */
  tallyColumns?: readonly string[];
}

/** What `open` found and did. */
export interface RecoveryReport {
  /** Segments kept for replay, per lane: count, rows, bytes, oldest createdAt. */
  lanes: Record<string, { segments: number; rows: number; bytes: number; oldest: number }>;
  /** Segments whose tail was cut (torn write), with the bytes cut. */
  truncated: { segment: string; bytes: number }[];
  /** Segments removed because nothing in them was ever durable (or the WAL is off). */
  discarded: { segment: string; reason: string; bytes: number }[];
  /** A lock left by a process that no longer runs. */
  staleLock?: { pid: number; host: string };
}

interface Lane {
  name: string;
  dir: string;
  pending: Buffer[];
  /** Each pending block's stream ranges when its writer knew them (concatNativeBlocks then need not walk it). */
  pendingStreams: (Uint32Array | undefined)[];
  /** Where pending blocks are merged at each commit (see commit). */
  scratch: Buffer;
  pendingRows: number;
  pendingBytes: number;
  /** When the oldest pending row arrived. */
  pendingSince: number;
  pendingTally: Map<string, number>;
  open?: SegmentWriter;
  openSeq?: number;
  openTally: Map<string, number>;
}

/** Adds `b` into `a`, times `sign`; a key that reaches 0 goes. */
/** Whose rows a block holds (a gateway node's key): one key for all of them, or rows per key. */
export type KeyTally = string | ReadonlyMap<string, number>;

export function mergeTally(a: Map<string, number>, b: ReadonlyMap<string, number>, sign = 1): void {
  for (const [k, n] of b) {
    const v = (a.get(k) ?? 0) + sign * n;
    if (v === 0) a.delete(k);
    else a.set(k, v);
  }
}

export class WriteAheadLog {
  readonly collectorId: string;
  /** This process's part of every token (a new one per start). */
  readonly epoch: string;
  private readonly lanes = new Map<string, Lane>();
  private seq: number;
  /** Bytes on disk of sealed segments not yet removed. */
  private sealedBytes = 0;
  private sealedCount = 0;
  private committing?: Promise<CommitResult>;
  private closed = false;
  private durableRowCount = 0;
  /** Rows per key added and not yet removed or forgotten (dead letters queued for replay excepted). */
  private readonly inFlightTally = new Map<string, number>();

  private constructor(
    readonly options: WalOptions,
    private readonly lock: DirectoryLock,
    collectorId: string,
    lastSeq: number,
  ) {
    this.collectorId = collectorId;
    this.seq = lastSeq;
    this.epoch = `${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
  }

  private get now(): number {
    return (this.options.now ?? Date.now)();
  }

  /**
   * Opens (creating) the log: takes the lock, reads every segment back (checksums; torn tails truncated), adopts
   * the inbox. Returns the segments to replay, oldest first, and what was found.
   */
  static async open(
    options: WalOptions,
  ): Promise<{ wal: WriteAheadLog; recovered: Segment[]; report: RecoveryReport }> {
    mkdirSync(options.dir, { recursive: true });
    const lock = await lockDirectory(options.dir, options.lock);
    const report: RecoveryReport = { lanes: {}, truncated: [], discarded: [] };
    if (lock.stale) report.staleLock = { pid: lock.stale.pid, host: lock.stale.host };
    const idFile = join(options.dir, 'collector-id');
    let collectorId: string;
    try {
      collectorId = readFileSync(idFile, 'utf8').trim();
    } catch {
      const host = hostname()
        .replace(/[^A-Za-z0-9.-]/g, '-')
        .slice(0, 40);
      collectorId = `${host}-${randomBytes(4).toString('hex')}`;
      writeFileSync(idFile, collectorId);
    }
    const found: { lane: string; seq: number }[] = [];
    let lastSeq = 0;
    for (const entry of await readdir(options.dir, { withFileTypes: true })) {
      if (!entry.isDirectory() || entry.name === INBOX) continue;
      for (const f of await readdir(join(options.dir, entry.name))) {
        const m = /^(\d+)\.(native|idx)$/.exec(f);
        if (!m || m[2] !== 'idx') continue;
        found.push({ lane: entry.name, seq: Number(m[1]) });
        lastSeq = Math.max(lastSeq, Number(m[1]));
      }
      // A data file without its index never had a durable row.
      for (const f of await readdir(join(options.dir, entry.name))) {
        const m = /^(\d+)\.native$/.exec(f);
        if (m && !found.some((s) => s.lane === entry.name && s.seq === Number(m[1]))) {
          lastSeq = Math.max(lastSeq, Number(m[1]));
          found.push({ lane: entry.name, seq: Number(m[1]) });
        }
      }
    }
    const wal = new WriteAheadLog(options, lock, collectorId, lastSeq);
    found.sort((a, b) => a.seq - b.seq);
    const recovered: Segment[] = [];
    for (const { lane, seq } of found) {
      const dir = join(options.dir, lane);
      const name = seqName(seq);
      if (!options.durable) {
        report.discarded.push({ segment: `${lane}/${name}`, reason: 'the WAL is off', bytes: 0 });
        await removeFiles(dir, name);
        continue;
      }
      const r = await readSegment(dir, name);
      if (!r.ok) {
        report.discarded.push({ segment: `${lane}/${name}`, reason: r.reason, bytes: r.bytes });
        await removeFiles(dir, name);
        continue;
      }
      if (r.segment.truncatedBytes > 0)
        report.truncated.push({ segment: `${lane}/${name}`, bytes: r.segment.truncatedBytes });
      const s = wal.track(
        lane,
        seq,
        r.segment.header,
        r.segment.rows,
        r.segment.bytes + r.segment.indexBytes,
      );
      s.tally = await tallyOf(s, options.tallyColumns);
      s.resolution = await readResolution(dir, name);
      if (s.inFlight) mergeTally(wal.inFlightTally, s.tally);
      recovered.push(s);
    }
    recovered.push(...(await wal.adoptInbox()));
    for (const entry of await readdir(options.dir, { withFileTypes: true })) {
      if (!entry.isDirectory() || entry.name === INBOX) continue;
      // A marker whose segment is gone (it was parked or removed just before a crash): nothing left to do.
      for (const f of await readdir(join(options.dir, entry.name))) {
        const m = /^(\d+)\.resolved$/.exec(f);
        if (m && !recovered.some((s) => s.lane === entry.name && s.seq === Number(m[1])))
          await rm(join(options.dir, entry.name, f), { force: true });
      }
    }
    for (const s of recovered) {
      const l = (report.lanes[s.lane] ??= { segments: 0, rows: 0, bytes: 0, oldest: Infinity });
      l.segments++;
      l.rows += s.rows;
      l.bytes += s.bytes;
      l.oldest = Math.min(l.oldest, s.header.createdAt);
    }
    return { wal, recovered, report };
  }

  /** Registers a sealed segment found on disk. */
  private track(lane: string, seq: number, header: SegmentHeader, rows: number, bytes: number): Segment {
    this.sealedBytes += bytes;
    this.sealedCount++;
    const dir = join(this.options.dir, lane);
    const name = seqName(seq);
    return {
      lane,
      seq,
      dir,
      name,
      file: nativePath(dir, name),
      header,
      rows,
      bytes,
      replayed: true,
      tally: new Map(),
      inFlight: header.deadLetter === undefined,
    };
  }

  /**
   * Dead letters queued for replay (`gatescope dead-letters replay` moves them into `inbox/`): each becomes a
   * sealed segment of its lane, keeping its token (ClickHouse refused it under that token, so it was never stored).
   */
  async adoptInbox(): Promise<Segment[]> {
    const inbox = join(this.options.dir, INBOX);
    mkdirSync(inbox, { recursive: true });
    const out: Segment[] = [];
    const names = (await readdir(inbox)).filter((f) => f.endsWith('.idx')).map((f) => f.slice(0, -4));
    for (const name of names.sort()) {
      const r = await readSegment(inbox, name);
      if (!r.ok) continue; // half moved: the CLI moves .native first, then .idx; try again next time
      const lane = r.segment.header.lane;
      const laneDir = this.laneDir(lane);
      const seq = ++this.seq;
      await rename(nativePath(inbox, name), nativePath(laneDir, seqName(seq)));
      await rename(indexPath(inbox, name), indexPath(laneDir, seqName(seq)));
      if (this.options.durable) await syncDirectory(laneDir);
      const s = this.track(
        lane,
        seq,
        r.segment.header,
        r.segment.rows,
        r.segment.bytes + r.segment.indexBytes,
      );
      s.tally = await tallyOf(s, this.options.tallyColumns);
      out.push(s);
    }
    return out;
  }

  private laneDir(lane: string): string {
    const dir = join(this.options.dir, lane);
    mkdirSync(dir, { recursive: true });
    return dir;
  }

  private lane(name: string): Lane {
    let l = this.lanes.get(name);
    if (!l) {
      l = {
        name,
        dir: this.laneDir(name),
        pending: [],
        pendingStreams: [],
        scratch: Buffer.alloc(0),
        pendingRows: 0,
        pendingBytes: 0,
        pendingSince: 0,
        pendingTally: new Map(),
        openTally: new Map(),
      };
      this.lanes.set(name, l);
    }
    return l;
  }

  /** A token never given out before: `<collector>:<epoch>:<seq>`. */
  private token(seq: number): string {
    return `${this.collectorId}:${this.epoch}:${seq}`;
  }

  /**
   * Adds rows (a Native block) to a lane, in memory until the next commit. `tally` says whose rows they are (a
   * gateway node): one key for all, or rows per key (summing to `rows`).
   */
  add(lane: string, data: Buffer, rows: number, tally: KeyTally = '', streams?: Uint32Array): void {
    if (rows === 0) return;
    const l = this.lane(lane);
    if (l.pendingRows === 0) l.pendingSince = this.now;
    l.pending.push(data);
    l.pendingStreams.push(streams);
    l.pendingRows += rows;
    l.pendingBytes += data.length;
    const perKey = typeof tally === 'string' ? new Map([[tally, rows]]) : tally;
    mergeTally(l.pendingTally, perKey);
    mergeTally(this.inFlightTally, perKey);
  }

  /**
   * Rows per key added and not yet gone (removed: stored; forgotten: moved to the dead letters), whether in memory,
   * in an open segment or in a sealed one. Dead letters queued for replay are not in it.
   */
  inFlight(): ReadonlyMap<string, number> {
    return this.inFlightTally;
  }

  /**
   * Records a segment's outcome next to it before the caller books it elsewhere and removes the segment:
   * a crash in between leaves the segment with its outcome (`Segment.resolution` at the next start), so the
   * bookkeeping is finished then without inserting the rows again.
   */
  async markResolved(segment: Segment, resolution: unknown): Promise<void> {
    const file = join(segment.dir, `${segment.name}.resolved`);
    // Not fdatasync'ed: it only has to survive the process (a kill -9), as the batch's removal that follows is not
    // synced either; after a power loss a removed batch can come back, and both cases book again under the same token.
    const fd = await openFile(file, 'w');
    try {
      await fd.writeFile(JSON.stringify(resolution));
    } finally {
      await fd.close();
    }
    segment.resolution = resolution;
  }

  /** Rows added and not yet written (lost on a crash before the next commit). */
  get pendingRows(): number {
    let n = 0;
    for (const l of this.lanes.values()) n += l.pendingRows;
    return n;
  }

  get pendingBytes(): number {
    let n = 0;
    for (const l of this.lanes.values()) n += l.pendingBytes;
    return n;
  }

  /** Bytes on disk: open and sealed segments not yet removed. */
  get bytes(): number {
    let n = this.sealedBytes;
    for (const l of this.lanes.values()) n += l.open?.diskBytes ?? 0;
    return n;
  }

  /** Segments on disk, open ones included. */
  get segments(): number {
    let n = this.sealedCount;
    for (const l of this.lanes.values()) if (l.open) n++;
    return n;
  }

  /** Rows made durable by this process so far (a counter; stays 0 with the WAL off). */
  get durableRows(): number {
    return this.durableRowCount;
  }

  /** When the oldest row still in memory or in an open segment arrived (undefined: none). */
  oldestOpen(): number | undefined {
    let t: number | undefined;
    for (const l of this.lanes.values()) {
      const at = l.open ? l.open.header.createdAt : l.pendingRows > 0 ? l.pendingSince : undefined;
      if (at !== undefined) t = t === undefined ? at : Math.min(t, at);
    }
    return t;
  }

  /** The open segment of a lane: rows written so far and when its first row arrived. */
  openSegment(lane: string): { rows: number; bytes: number; createdAt: number } | undefined {
    const o = this.lanes.get(lane)?.open;
    return o && { rows: o.rows, bytes: o.diskBytes, createdAt: o.header.createdAt };
  }

  /** Lanes that have an open segment or pending rows. */
  activeLanes(): string[] {
    return [...this.lanes.values()].filter((l) => l.open || l.pendingRows > 0).map((l) => l.name);
  }

  /**
   * Group commit: writes every lane's pending rows (merged into one block per lane) to its open segment and
   * makes them durable together. Commits run one at a time; a call during one waits for it and then commits.
   */
  commit(): Promise<CommitResult> {
    const run = async (): Promise<CommitResult> => {
      const result: CommitResult = { rows: 0, lanes: {} };
      const touched: SegmentWriter[] = [];
      const writes: Promise<void>[] = [];
      for (const l of this.lanes.values()) {
        if (l.pendingRows === 0) continue;
        // Merged into the lane's scratch buffer, reused commit after commit (a fresh buffer of this size costs more in
        // page faults than the copy itself): nothing keeps `data` once it is written.
        const data = concatNativeBlocks(l.pending, l.pendingStreams, (bytes) => {
          if (l.scratch.length < bytes) l.scratch = Buffer.allocUnsafeSlow(Math.ceil(bytes * 1.25));
          return l.scratch.subarray(0, bytes);
        });
        const rows = l.pendingRows;
        const since = l.pendingSince;
        const tally = l.pendingTally;
        l.pending = [];
        l.pendingStreams = [];
        l.pendingRows = 0;
        l.pendingBytes = 0;
        l.pendingTally = new Map();
        writes.push(
          (async () => {
            try {
              if (!l.open) {
                const seq = ++this.seq;
                const open = await SegmentWriter.create(l.dir, seqName(seq), {
                  token: this.token(seq),
                  lane: l.name,
                  createdAt: since,
                });
                l.openSeq = seq;
                l.open = open;
              }
              await l.open.append(data, rows);
            } catch (err) {
              // Not written (a full disk, an I/O error): the rows go back in front, for the next commit. A
              // half-written block is overwritten then (the append position only moves on success).
              l.pending.unshift(Buffer.from(data)); // out of the scratch buffer, which the next commit reuses
              l.pendingStreams.unshift(undefined);
              l.pendingRows += rows;
              l.pendingBytes += data.length;
              l.pendingSince = since;
              mergeTally(l.pendingTally, tally);
              throw err;
            }
            mergeTally(l.openTally, tally);
            touched.push(l.open);
            result.lanes[l.name] = rows;
            result.rows += rows;
          })(),
        );
      }
      const written = await Promise.allSettled(writes);
      if (this.options.durable) await Promise.all(touched.map((w) => w.sync()));
      if (this.options.durable) this.durableRowCount += result.rows;
      const failed = written.find((w) => w.status === 'rejected');
      if (failed) throw (failed as PromiseRejectedResult).reason;
      return result;
    };
    const next = (this.committing ?? Promise.resolve()).then(run, run);
    this.committing = next;
    void next.finally(() => {
      if (this.committing === next) this.committing = undefined;
    });
    return next;
  }

  /**
   * Closes the lane's open segment (after any commit in progress): it becomes a batch. Undefined when the lane
   * has no open segment.
   */
  async seal(lane: string): Promise<Segment | undefined> {
    await this.committing?.catch(() => {});
    const l = this.lanes.get(lane);
    const w = l?.open;
    if (!l || !w) return undefined;
    l.open = undefined;
    const tally = l.openTally;
    l.openTally = new Map();
    await w.close();
    this.sealedBytes += w.diskBytes;
    this.sealedCount++;
    return {
      lane,
      seq: l.openSeq!,
      dir: l.dir,
      name: w.name,
      file: w.file,
      header: w.header,
      rows: w.rows,
      bytes: w.diskBytes,
      replayed: false,
      tally,
      inFlight: true,
    };
  }

  /** A segment ClickHouse committed (or that was dead-lettered): gone from the log. */
  async remove(segment: Segment): Promise<void> {
    this.forget(segment);
    await removeFiles(segment.dir, segment.name);
  }

  /** A segment moved elsewhere (dead letters) by its files: no longer counted here (synchronously). */
  forget(segment: Segment): void {
    this.sealedBytes -= segment.bytes;
    this.sealedCount--;
    if (segment.inFlight) mergeTally(this.inFlightTally, segment.tally, -1);
    segment.inFlight = false;
    if (segment.resolution !== undefined)
      void rm(join(segment.dir, `${segment.name}.resolved`), { force: true }).catch(() => {});
  }

  /** Seals every open segment, stops, and releases the lock. Pending rows must be committed first. */
  async close(): Promise<Segment[]> {
    if (this.closed) return [];
    this.closed = true;
    await this.committing?.catch(() => {});
    const sealed: Segment[] = [];
    for (const l of this.lanes.values()) {
      const s = await this.seal(l.name);
      if (s) sealed.push(s);
    }
    await this.lock.release();
    return sealed;
  }
}

export interface CommitResult {
  /** Rows made durable by this commit. */
  rows: number;
  /** Rows per lane. */
  lanes: Record<string, number>;
}

async function removeFiles(dir: string, name: string): Promise<void> {
  await Promise.all([
    rm(nativePath(dir, name), { force: true }),
    rm(indexPath(dir, name), { force: true }),
    rm(join(dir, `${name}.resolved`), { force: true }),
  ]);
}

/** A segment read back: its rows per tuple of `columns` (all under the key '' without columns). */
async function tallyOf(
  segment: Segment,
  columns: readonly string[] | undefined,
): Promise<Map<string, number>> {
  if (!columns || segment.rows === 0) return new Map(segment.rows > 0 ? [['', segment.rows]] : []);
  return nativeRowKeys(await readFile(segment.file), columns);
}

async function readResolution(dir: string, name: string): Promise<unknown> {
  try {
    return JSON.parse(await readFile(join(dir, `${name}.resolved`), 'utf8')) as unknown;
  } catch {
    return undefined;
  }
}
