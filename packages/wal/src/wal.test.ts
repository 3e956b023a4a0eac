import { spawn } from 'node:child_process';
import {
  appendFileSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  statSync,
  truncateSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { AccessLogDecoder, readNative } from '@gatescope/als';
import { describe, expect, it } from 'vitest';
import { FIXTURE_PATH_TEMPLATER, makeTrafficMessage } from '../../../test/fixtures/als.js';
import {
  DeadLetterStore,
  listDeadLetters,
  readDeadLetterRows,
  requeueDeadLetters,
  WalLockedError,
  WriteAheadLog,
} from './index.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'gs-wal-'));

/** A Native block of `entries` http_requests rows (distinct request ids per seed). */
function block(seed: number, entries = 50): { data: Buffer; rows: number; ids: string[] } {
  const d = new AccessLogDecoder({ pathTemplater: FIXTURE_PATH_TEMPLATER });
  d.decode(makeTrafficMessage({ entries, seed }).bytes, {});
  const { data, rows } = d.takeHttp();
  return { data, rows, ids: readNative(data).map((r) => String(r.request_id)) };
}

const idsOf = (file: string) => readNative(readFileSync(file)).map((r) => String(r.request_id));

describe('write-ahead log', () => {
  it('group commit: rows are durable once commit resolves; sealed segments are read back in order after a crash, tokens kept', async () => {
    const dir = tmp();
    const { wal, recovered } = await WriteAheadLog.open({ dir, durable: true });
    expect(recovered).toEqual([]);
    const a = block(1);
    const b = block(2);
    const c = block(3);
    wal.add('http_requests', a.data, a.rows);
    wal.add('http_requests', b.data, b.rows);
    expect(wal.pendingRows).toBe(100);
    expect(wal.durableRows).toBe(0);
    const first = await wal.commit();
    expect(first).toEqual({ rows: 100, lanes: { http_requests: 100 } });
    expect([wal.pendingRows, wal.durableRows]).toEqual([0, 100]);
    // Two blocks added between commits are written as one merged block.
    const sealed = (await wal.seal('http_requests'))!;
    expect(sealed.rows).toBe(100);
    expect(idsOf(sealed.file)).toEqual([...a.ids, ...b.ids]);
    wal.add('http_requests', c.data, c.rows);
    wal.add('tcp_connections.out-of-window', c.data, c.rows);
    await wal.commit();
    expect(wal.segments).toBe(3);
    expect(wal.bytes).toBeGreaterThan(a.data.length + 2 * c.data.length);
    const openToken = (await wal.seal('http_requests'))!.header.token;

    // kill -9: no close, the lock stays behind. The next open replays every segment, oldest first.
    const again = await WriteAheadLog.open({ dir, durable: true });
    expect(again.report.staleLock?.pid).toBe(process.pid);
    expect(again.recovered.map((s) => [s.lane, s.rows, s.replayed])).toEqual([
      ['http_requests', 100, true],
      ['http_requests', 50, true],
      ['tcp_connections.out-of-window', 50, true],
    ]);
    expect(again.recovered.map((s) => s.header.token)).toContain(sealed.header.token);
    expect(again.recovered.map((s) => s.header.token)).toContain(openToken);
    expect(again.report.lanes.http_requests).toMatchObject({ segments: 2, rows: 150 });
    expect(again.report.truncated).toEqual([]);
    // New segments get new tokens (a new epoch), never one ClickHouse may remember for other rows.
    again.wal.add('http_requests', a.data, a.rows);
    await again.wal.commit();
    const fresh = (await again.wal.seal('http_requests'))!;
    expect(again.recovered.map((s) => s.header.token)).not.toContain(fresh.header.token);
    expect(fresh.seq).toBeGreaterThan(Math.max(...again.recovered.map((s) => s.seq)));
    for (const s of again.recovered) await again.wal.remove(s);
    await again.wal.remove(fresh);
    expect([again.wal.segments, again.wal.bytes]).toEqual([0, 0]);
    await again.wal.close();
    expect(existsSync(join(dir, 'LOCK'))).toBe(false);
  });

  it('a torn tail (half a block, a torn index record, zeros after power loss) is cut at the last whole block', async () => {
    const dir = tmp();
    const { wal } = await WriteAheadLog.open({ dir, durable: true });
    const a = block(4);
    const b = block(5);
    wal.add('http_requests', a.data, a.rows);
    await wal.commit();
    wal.add('http_requests', b.data, b.rows);
    await wal.commit();
    const s = (await wal.seal('http_requests'))!;
    const idx = join(s.dir, `${s.name}.idx`);
    const whole = { data: statSync(s.file).size, idx: statSync(idx).size };

    // 1. Half of a third block written, its index record too, then the crash.
    const c = block(6);
    appendFileSync(s.file, c.data.subarray(0, 100));
    const record = Buffer.alloc(16);
    record.writeUInt32LE(c.data.length, 0);
    appendFileSync(idx, record.subarray(0, 9));
    let r = await WriteAheadLog.open({ dir, durable: true });
    expect(r.recovered.map((x) => x.rows)).toEqual([100]);
    expect(r.report.truncated).toEqual([{ segment: `http_requests/${s.name}`, bytes: 100 + 9 }]);
    expect([statSync(s.file).size, statSync(idx).size]).toEqual([whole.data, whole.idx]);
    expect(idsOf(s.file)).toEqual([...a.ids, ...b.ids]);

    // 2. Power loss: the files grew but the last block's data never reached the disk (zeros), its record did.
    const zeros = Buffer.alloc(c.data.length);
    appendFileSync(s.file, zeros);
    const good = Buffer.alloc(16);
    good.writeUInt32LE(c.data.length, 0);
    good.writeUInt32LE(c.rows, 4);
    good.writeUInt32LE(crc32(c.data), 8);
    good.writeUInt32LE(crc32(good.subarray(0, 12)), 12);
    appendFileSync(idx, good);
    r = await WriteAheadLog.open({ dir, durable: true });
    expect(r.recovered.map((x) => x.rows)).toEqual([100]);
    expect(r.report.truncated[0].bytes).toBe(c.data.length + 16);

    // 3. A bit flipped inside the second block: only the first survives.
    const bytes = readFileSync(s.file);
    bytes[a.data.length + 50] ^= 0xff;
    writeFileSync(s.file, bytes);
    r = await WriteAheadLog.open({ dir, durable: true });
    expect(r.recovered.map((x) => x.rows)).toEqual([50]);
    expect(idsOf(s.file)).toEqual(a.ids);

    // 4. A segment whose index header is torn never held a durable row: removed, and said so.
    truncateSync(idx, 5);
    r = await WriteAheadLog.open({ dir, durable: true });
    expect(r.recovered).toEqual([]);
    expect(r.report.discarded).toEqual([
      {
        segment: `http_requests/${s.name}`,
        reason: 'index header torn or not a gatescope WAL segment',
        bytes: expect.any(Number),
      },
    ]);
    expect(readdirSync(s.dir)).toEqual([]);
  });

  it('refuses a directory another live process holds, naming it; takes over a lock whose process is gone', async () => {
    const dir = tmp();
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
    await new Promise((r) => child.once('spawn', r));
    const stat = readFileSync(`/proc/${child.pid}/stat`, 'utf8');
    const started = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
    writeFileSync(join(dir, 'LOCK'), JSON.stringify({ pid: child.pid, host: hostname(), started }));
    await expect(WriteAheadLog.open({ dir, durable: true })).rejects.toThrow(WalLockedError);
    await expect(WriteAheadLog.open({ dir, durable: true })).rejects.toThrow(
      new RegExp(`in use by gatescope process ${child.pid}`),
    );
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const { wal, report } = await WriteAheadLog.open({ dir, durable: true });
    expect(report.staleLock?.pid).toBe(child.pid);
    await wal.close();
  });

  it("another host's lock (a container recreated on the volume): refused while its lease is fresh, taken once it ran out", async () => {
    const dir = tmp();
    const lock = join(dir, 'LOCK');
    writeFileSync(lock, JSON.stringify({ pid: 1, host: 'collector-0-old-container', started: '1' }));
    const lease = { leaseMs: 2_000, waitMs: 300 };
    await expect(WriteAheadLog.open({ dir, durable: true, lock: lease })).rejects.toThrow(
      /in use by gatescope process 1 on collector-0-old-container/,
    );
    const old = new Date(Date.now() - 5_000);
    utimesSync(lock, old, old);
    const { wal, report } = await WriteAheadLog.open({ dir, durable: true, lock: lease });
    expect(report.staleLock).toEqual({ pid: 1, host: 'collector-0-old-container' });
    // The new owner renews its own lease.
    await new Promise((r) => setTimeout(r, 800));
    expect(Date.now() - statSync(lock).mtimeMs).toBeLessThan(800);
    await wal.close();
  });

  it('with the WAL off, what an earlier process left is discarded at open', async () => {
    const dir = tmp();
    const { wal } = await WriteAheadLog.open({ dir, durable: false });
    const a = block(7);
    wal.add('http_requests', a.data, a.rows);
    await wal.commit();
    expect(wal.durableRows).toBe(0);
    await wal.seal('http_requests');
    const r = await WriteAheadLog.open({ dir, durable: false });
    expect(r.recovered).toEqual([]);
    expect(r.report.discarded).toHaveLength(1);
  });
});

describe('dead letters', () => {
  it('are written with their reason, listed, read back, and replayed through the inbox with their token', async () => {
    const root = tmp();
    const walDir = join(root, 'wal');
    const dlDir = join(root, 'dead-letters');
    const { wal } = await WriteAheadLog.open({ dir: walDir, durable: true });
    const store = new DeadLetterStore({
      dir: dlDir,
      collectorId: wal.collectorId,
      durable: true,
      maxBytes: 1e9,
    });
    const a = block(8, 3);
    const error = { code: 469, name: 'VIOLATED_CONSTRAINT', message: 'Constraint `c` … is violated' };
    const letter = (await store.write(
      'http_requests',
      'col:ep:7/h01',
      a.data,
      a.rows,
      'insert_refused',
      error,
    ))!;
    expect(letter.id).toBe('col_ep_7_h01');
    // Writing the same token again (the batch split again after a crash) replaces it.
    await store.write('http_requests', 'col:ep:7/h01', a.data, a.rows, 'insert_refused', error);
    expect([store.files, store.entries]).toEqual([1, 3]);

    // An out-of-window segment is parked whole.
    const b = block(9, 4);
    wal.add('http_requests.out-of-window', b.data, b.rows);
    await wal.commit();
    const seg = (await wal.seal('http_requests.out-of-window'))!;
    await store.park(seg, 'http_requests', 'start_time_out_of_range', null);
    wal.forget(seg);
    expect(wal.segments).toBe(0);

    const list = await listDeadLetters(dlDir);
    expect(list.map((d) => [d.table, d.reason, d.entries, d.error?.name ?? null])).toEqual([
      ['http_requests', 'insert_refused', 3, 'VIOLATED_CONSTRAINT'],
      ['http_requests', 'start_time_out_of_range', 4, null],
    ]);
    expect(readNative(await readDeadLetterRows(dlDir, list[0])).map((r) => r.request_id)).toEqual(a.ids);
    expect(
      await new DeadLetterStore({ dir: dlDir, collectorId: 'x', durable: true, maxBytes: 1e9 }).load(),
    ).toHaveLength(2);

    // A full store refuses more.
    const small = new DeadLetterStore({ dir: dlDir, collectorId: 'x', durable: true, maxBytes: 10 });
    expect(
      await small.write('http_requests', 'other', a.data, a.rows, 'insert_refused', error),
    ).toBeUndefined();

    await requeueDeadLetters(dlDir, walDir, list);
    expect(await listDeadLetters(dlDir)).toEqual([]);
    const adopted = (await wal.adoptInbox()).sort((x, y) => x.rows - y.rows);
    expect(adopted.map((s) => [s.lane, s.rows, s.header.token, s.header.deadLetter])).toEqual([
      ['http_requests', 3, 'col:ep:7/h01', 'col_ep_7_h01'],
      ['http_requests', 4, seg.header.token, list[1].id],
    ]);
    expect(idsOf(adopted[1].file)).toEqual(b.ids);
    await wal.close();
  });
});
