/**
 * One writer per write-ahead log. Two collectors appending to the same directory would interleave batches and
 * delete each other's segments, so the directory is locked by a file naming its owner: pid, host and (on Linux)
 * the process's start time. The owner touches the file every few seconds (a lease).
 *
 * A lock is stale, and taken over (and reported), when its owner is gone: on the same host, when no process with
 * that pid and start time runs (kill -9, a crash: at once); from another host (a container recreated on the same
 * volume, a pod rescheduled), when the lease was not renewed for LEASE_MS. A fresh lease of another host means
 * another live collector uses the directory: refused, naming it.
 */
import { readFileSync } from 'node:fs';
import { open, readFile, rm, stat, utimes } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';

/** How often the owner renews its lease, and how old a lease from another host must be to be stale. */
const RENEW_MS = 5_000;
export const LEASE_MS = 30_000;

interface Owner {
  pid: number;
  host: string;
  /** /proc/<pid>/stat field 22 (clock ticks since boot), or null where /proc is not there. */
  started: string | null;
}

function startTicks(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

/** Whether a process of this host with the owner's pid and start time runs. */
function runsHere(owner: Owner): boolean {
  try {
    process.kill(owner.pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  return owner.started === null || startTicks(owner.pid) === owner.started;
}

export class WalLockedError extends Error {
  readonly code = 'ERR_WAL_LOCKED';
}

export interface DirectoryLock {
  /** The previous owner, when its lock was stale and taken over. */
  readonly stale?: Owner;
  release(): Promise<void>;
}

export interface LockOptions {
  /** How long to wait for another host's lease to run out before refusing (default: one lease). */
  waitMs?: number;
  leaseMs?: number;
}

export async function lockDirectory(dir: string, options: LockOptions = {}): Promise<DirectoryLock> {
  const file = join(dir, 'LOCK');
  const leaseMs = options.leaseMs ?? LEASE_MS;
  const giveUpAt = Date.now() + (options.waitMs ?? leaseMs + RENEW_MS);
  const me: Owner = { pid: process.pid, host: hostname(), started: startTicks(process.pid) };
  let stale: Owner | undefined;
  for (;;) {
    try {
      const fd = await open(file, 'wx');
      await fd.writeFile(JSON.stringify(me));
      await fd.close();
      const renew = setInterval(
        () => {
          const now = new Date();
          utimes(file, now, now).catch(() => {});
        },
        Math.min(RENEW_MS, leaseMs / 3),
      );
      renew.unref();
      return {
        stale,
        async release() {
          clearInterval(renew);
          await rm(file, { force: true });
        },
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    let owner: Owner | undefined;
    let age = Infinity;
    try {
      owner = JSON.parse(await readFile(file, 'utf8')) as Owner;
      age = Date.now() - (await stat(file)).mtimeMs;
    } catch {
      owner = undefined; // torn by a crash while it was written, or just removed: nobody holds it
    }
    const live =
      owner !== undefined &&
      owner.pid !== process.pid &&
      (owner.host === me.host ? runsHere(owner) : age < leaseMs);
    if (live) {
      if (owner!.host !== me.host && Date.now() < giveUpAt) {
        // Another host's lease: it may be a previous container on this volume that just died.
        await new Promise((r) => setTimeout(r, 1_000));
        continue;
      }
      throw new WalLockedError(
        `${dir} is in use by gatescope process ${owner!.pid} on ${owner!.host}: each process needs a GATESCOPE_DATA_DIR of its own. ` +
          `If that process is gone, remove ${file} (a lock from another host is also released ${leaseMs / 1000} s after its owner stopped).`,
      );
    }
    stale = owner ?? { pid: 0, host: '', started: null };
    await rm(file, { force: true });
  }
}
