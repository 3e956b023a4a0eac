import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { ClickHouse } from './clickhouse.js';
import { ident } from './ident.js';

/**
 * The migration lock: at most one migrator changes the schema at a time, even when several start together
 * (docker compose, a Kubernetes Job retried, two operators). Built from what ClickHouse guarantees, no client
 * clock and no second store:
 *
 * - The lock is a sequence of epochs in `<db>.schema_lock`. To take it, a migrator reads the newest epoch; when
 *   that one is free (released, or its lease ran out by the server's clock) it inserts a `claim` row for the
 *   next epoch with `insert_deduplication_token = 'gatescope-migration-lock-<epoch>-claim'`.
 * - ClickHouse keeps exactly one block per token (`non_replicated_deduplication_window` on one server; Keeper's
 *   block registry per shard for `ReplicatedMergeTree`, where the claim for an epoch always lands on the same
 *   shard because the Distributed table shards by epoch). Every other claim for that epoch is dropped as a
 *   duplicate, so exactly one claim row exists per epoch and its `owner` is the holder.
 * - The holder renews its lease (`renew` rows) every third of it, checks before every statement that the lease
 *   it last confirmed has not run out, and writes a `release` row when done. A migrator that dies leaves a
 *   lease that runs out; the next one takes the following epoch.
 *
 * Tokens fall out of the deduplication window only after 10,000 lock inserts, and a migrator only ever claims
 * the epoch after the newest one it saw, so a stale claim can never create a second holder of a live epoch.
 */

export interface LockRow {
  epoch: number;
  owner: string;
  kind: 'claim' | 'renew' | 'release';
  /** The latest `expires_at` among this (epoch, owner, kind)'s rows, ms since epoch (server clock). */
  expires_ms: number;
  /** The server's clock when the rows were read, ms since epoch. */
  now_ms: number;
}

export interface LockState {
  /** Newest epoch seen (0: the lock was never taken). */
  epoch: number;
  /** Who holds `epoch`: the owner of its (single) claim row. */
  holder?: string;
  /** When the holder's lease runs out (server clock), ms. */
  expiresMs?: number;
  /** True when the next epoch may be claimed: never taken, released, or the holder's lease ran out. */
  free: boolean;
}

/** The lock's state from the rows of its newest epochs (pure; see `readLockRows`). */
export function lockState(rows: readonly LockRow[]): LockState {
  if (rows.length === 0) return { epoch: 0, free: true };
  const epoch = Math.max(...rows.map((r) => r.epoch));
  const top = rows.filter((r) => r.epoch === epoch);
  const claims = top.filter((r) => r.kind === 'claim').map((r) => r.owner);
  // Deduplication leaves one claim per epoch; the minimum is only a deterministic answer should a token ever
  // have fallen out of the window (every reader then agrees on the same holder).
  const holder = claims.sort()[0];
  if (holder === undefined) {
    // Rows of an epoch whose claim is not visible yet (a replica that has not fetched it): not free, ask again.
    return { epoch, free: false };
  }
  const mine = top.filter((r) => r.owner === holder);
  const expiresMs = Math.max(...mine.filter((r) => r.kind !== 'release').map((r) => r.expires_ms));
  const released = mine.some((r) => r.kind === 'release');
  const nowMs = Math.max(...top.map((r) => r.now_ms));
  return { epoch, holder, expiresMs, free: released || expiresMs <= nowMs };
}

export interface LockOptions {
  /** How long a claim or renewal holds without the next renewal. Default 60 s. */
  leaseMs?: number;
  /** How often a waiting migrator looks again. Default 1 s. */
  pollMs?: number;
  /** Give up waiting after this long. Default: wait as long as it takes. */
  waitMs?: number;
  /** Told every time the lock is seen held by someone else (once per poll). */
  onWait?: (state: LockState) => void;
  /** Owner id written in the lock rows; default host:pid:random. */
  owner?: string;
  /**
   * The table holding the lock's rows (default `schema_lock`). Any table of the same shape serves as another
   * lock: the alert evaluator's lease is `alert_lease` (one evaluator at a time across replicas).
   */
  table?: string;
}

export interface MigrationLock {
  readonly owner: string;
  readonly epoch: number;
  /** Throws when the lease this process last confirmed may have run out: stop changing the schema. */
  assertHeld(): void;
  release(): Promise<void>;
}

export class MigrationLockError extends Error {
  readonly code = 'ERR_MIGRATION_LOCK';
  constructor(message: string) {
    super(message);
    this.name = 'MigrationLockError';
  }
}

/** Margin kept before the lease's end: the holder stops this much early, ahead of the server's clock. */
const SAFETY_MS = 2_000;

function token(table: string, epoch: number, what: string): string {
  // Built from integers, fixed words and a checked table name only: nothing from outside reaches SETTINGS.
  const name = table === 'schema_lock' ? 'migration-lock' : ident(table).replace(/[^A-Za-z0-9_]/g, '');
  return `gatescope-${name}-${Math.trunc(epoch)}-${what}`;
}

async function readLockRows(ch: ClickHouse, table: string): Promise<LockRow[]> {
  const rs = await ch.client.query({
    query:
      `SELECT epoch, owner, toString(kind) AS kind, toUnixTimestamp64Milli(max(expires_at)) AS expires_ms, ` +
      `toUnixTimestamp64Milli(now64(3)) AS now_ms FROM ${ch.database}.${ident(table)} ` +
      `WHERE epoch >= (SELECT max(epoch) FROM ${ch.database}.${ident(table)}) ` +
      `GROUP BY epoch, owner, kind`,
    format: 'JSONEachRow',
  });
  return (await rs.json<LockRow>()).map((r) => ({
    ...r,
    epoch: Number(r.epoch),
    expires_ms: Number(r.expires_ms),
    now_ms: Number(r.now_ms),
  }));
}

async function writeLockRow(
  ch: ClickHouse,
  table: string,
  row: { epoch: number; owner: string; kind: LockRow['kind']; leaseMs: number },
  dedupToken: string,
): Promise<void> {
  // The token goes in the statement's own SETTINGS (never a session-wide SET): it must apply to this insert
  // only. distributed_foreground_insert makes a Distributed insert return once the shard committed it.
  await ch.client.command({
    query:
      `INSERT INTO ${ch.database}.${ident(table)} (epoch, owner, kind, expires_at) ` +
      `SETTINGS insert_deduplication_token = '${dedupToken}', distributed_foreground_insert = 1 ` +
      `SELECT {epoch:UInt64}, {owner:String}, {kind:String}, now64(3) + toIntervalMillisecond({lease_ms:UInt32})`,
    query_params: { epoch: row.epoch, owner: row.owner, kind: row.kind, lease_ms: row.leaseMs },
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Take the migration lock, waiting while another migrator holds it. `schema_lock` must exist. */
export async function acquireMigrationLock(
  ch: ClickHouse,
  options: LockOptions = {},
): Promise<MigrationLock> {
  const leaseMs = options.leaseMs ?? 60_000;
  const pollMs = options.pollMs ?? 1_000;
  const owner = options.owner ?? `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
  const table = options.table ?? 'schema_lock';
  const giveUpAt = Date.now() + (options.waitMs ?? Infinity);
  for (;;) {
    const state = lockState(await readLockRows(ch, table));
    if (state.free) {
      const epoch = state.epoch + 1;
      const sentAt = Date.now();
      await writeLockRow(ch, table, { epoch, owner, kind: 'claim', leaseMs }, token(table, epoch, 'claim'));
      // Who won this epoch? Look until its claim is visible: at once on one server, after replication when
      // the read lands on a replica that has not fetched the claim yet.
      const lookUntil = Date.now() + leaseMs;
      while (Date.now() < lookUntil) {
        const after = lockState(await readLockRows(ch, table));
        if (after.epoch === epoch && after.holder === owner)
          return held(ch, table, owner, epoch, leaseMs, sentAt);
        if (after.epoch > epoch || (after.epoch === epoch && after.holder !== undefined)) break;
        await sleep(Math.min(pollMs, 100));
      }
      continue;
    }
    if (Date.now() >= giveUpAt) {
      throw new MigrationLockError(
        `Timed out waiting for the migration lock held by ${state.holder ?? 'another migrator'} (epoch ${state.epoch}). ` +
          'If that migrator died, its lease runs out by itself; otherwise wait for it to finish.',
      );
    }
    options.onWait?.(state);
    await sleep(pollMs);
  }
}

function held(
  ch: ClickHouse,
  table: string,
  owner: string,
  epoch: number,
  leaseMs: number,
  sentAt: number,
): MigrationLock {
  // Local estimate of the lease's end: counted from before the claim was sent, so never later than the server's.
  let validUntil = sentAt + leaseMs;
  let renewals = 0;
  let released = false;
  let renewing: Promise<void> | undefined;
  const timer = setInterval(
    () => {
      if (renewing) return;
      const at = Date.now();
      renewing = writeLockRow(
        ch,
        table,
        { epoch, owner, kind: 'renew', leaseMs },
        token(table, epoch, `renew-${++renewals}`),
      )
        .then(() => {
          validUntil = at + leaseMs;
        })
        // A failed renewal is retried at the next interval; assertHeld() stops the work if the lease runs out.
        .catch(() => {})
        .finally(() => {
          renewing = undefined;
        });
    },
    Math.max(100, Math.floor(leaseMs / 3)),
  );
  timer.unref();
  return {
    owner,
    epoch,
    assertHeld() {
      if (released) throw new MigrationLockError('the migration lock was already released');
      if (Date.now() > validUntil - Math.min(SAFETY_MS, leaseMs / 4)) {
        throw new MigrationLockError(
          `Lost the migration lock (epoch ${epoch}): its lease could not be renewed in time. Stopping before the ` +
            'next statement; run the migration again once ClickHouse answers.',
        );
      }
    },
    async release() {
      if (released) return;
      released = true;
      clearInterval(timer);
      await renewing;
      await writeLockRow(
        ch,
        table,
        { epoch, owner, kind: 'release', leaseMs: 0 },
        token(table, epoch, 'release'),
      );
    },
  };
}
