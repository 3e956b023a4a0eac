/**
 * One writer per write-ahead log. Two collectors appending to the same directory would interleave batches and
 * delete each other's segments, so the directory is locked by a file naming its owner: pid, host and (on Linux)
 * the process's start time, which tells a live owner from a pid reused after a crash or reboot. A lock whose
 * owner is gone (kill -9, power loss) is stale: taken over, and reported.
 */
import { readFileSync } from 'node:fs';
import { open, readFile, rm } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';

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

function alive(owner: Owner): boolean {
  if (owner.host !== hostname()) return true; // another host's process: we cannot tell, so never steal
  try {
    process.kill(owner.pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
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

export async function lockDirectory(dir: string): Promise<DirectoryLock> {
  const file = join(dir, 'LOCK');
  const me: Owner = { pid: process.pid, host: hostname(), started: startTicks(process.pid) };
  let stale: Owner | undefined;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fd = await open(file, 'wx');
      await fd.writeFile(JSON.stringify(me));
      await fd.close();
      return {
        stale,
        release: () => rm(file, { force: true }),
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    let owner: Owner | undefined;
    try {
      owner = JSON.parse(await readFile(file, 'utf8')) as Owner;
    } catch {
      owner = undefined; // torn by a crash while it was written: nobody holds it
    }
    if (owner && owner.pid !== process.pid && alive(owner)) {
      throw new WalLockedError(
        `${dir} is in use by gatescope process ${owner.pid} on ${owner.host}: each process needs a GATESCOPE_DATA_DIR of its own. ` +
          `If that process is gone, remove ${file}.`,
      );
    }
    stale = owner ?? { pid: 0, host: '', started: null };
    await rm(file, { force: true });
  }
  throw new WalLockedError(`could not take the lock ${file}: another process keeps taking it`);
}
