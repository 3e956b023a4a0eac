import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { io, type Socket } from 'socket.io-client';
import type { GatescopeProcess } from '../support/gatescope-process.js';
import { processMetric } from '../support/probes.js';

/** The load tests run only against loopback: a refusal to point them anywhere else. */
export function assertLoopback(target: string): void {
  if (!/^(127\.\d+\.\d+\.\d+|localhost|\[::1\]):\d+$/.test(target))
    throw new Error(`load tests send to loopback only, not ${target}`);
}

export interface LoadRun {
  child: ChildProcess;
  /** Entries sent so far (reported every second). */
  sent(): number;
  /** Resolves once every stream was half-closed and answered: every entry sent was read by gatescope. */
  done: Promise<{ sent: number; seconds: number; behindMax: number; errors: string[] }>;
  stop(): void;
}

/** Starts test/load/als-load.mjs: `rate` entries/s (0: as fast as taken) for `seconds` on `streams` streams. */
export function startLoad(
  target: string,
  opts: { rate: number; seconds: number; prefix: string; streams?: number; routes?: number },
): LoadRun {
  assertLoopback(target);
  const child = fork(
    fileURLToPath(new URL('./als-load.mjs', import.meta.url)),
    [JSON.stringify({ target, ...opts })],
    {
      stdio: 'inherit',
    },
  );
  let sent = 0;
  const done = new Promise<{ sent: number; seconds: number; behindMax: number; errors: string[] }>(
    (resolve, reject) => {
      child.on(
        'message',
        (m: {
          progress?: { sent: number };
          done?: { sent: number; seconds: number; behindMax: number; errors: string[] };
        }) => {
          if (m.progress) sent = m.progress.sent;
          if (m.done) {
            sent = m.done.sent;
            resolve(m.done);
          }
        },
      );
      child.once('exit', (code) =>
        code === 0 ? undefined : reject(new Error(`load client exited ${code}`)),
      );
    },
  );
  return { child, sent: () => sent, done, stop: () => child.send('stop') };
}

/** Resident memory of a process (kB), from /proc. */
export function rssKb(pid: number): number {
  const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : 0;
}

/** CPU seconds a process used so far (user + system), from /proc. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

/** Samples a process's RSS every `everyMs`. */
export function sampleRss(pid: number, everyMs = 5_000) {
  const t0 = Date.now();
  const samples: { s: number; mib: number }[] = [];
  const take = () => samples.push({ s: (Date.now() - t0) / 1000, mib: rssKb(pid) / 1024 });
  take();
  const timer = setInterval(take, everyMs);
  return {
    samples,
    stop() {
      clearInterval(timer);
      take();
    },
  };
}

/** Mean of the samples within [from, to) seconds. */
export const meanBetween = (samples: { s: number; mib: number }[], from: number, to: number) => {
  const xs = samples.filter((x) => x.s >= from && x.s < to).map((x) => x.mib);
  return xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
};

export const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor(q * s.length))] : NaN;
};

/** Queries the API in a loop (a dashboard refreshing): latencies in ms, errors. */
export function queryLoop(gs: GatescopeProcess, everyMs = 200) {
  const paths = [
    'api/v1/summary?range=15m',
    'api/v1/routes?range=1h',
    'api/v1/timeseries?range=1h&metrics=requests,p99_ms',
    'api/v1/status?range=15m',
    'api/v1/top/path_template?range=15m',
    'api/v1/routes?range=24h',
  ];
  const latencies: number[] = [];
  let errors = 0;
  let i = 0;
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const t = performance.now();
      try {
        const res = await fetch(gs.http + paths[i++ % paths.length]);
        await res.arrayBuffer();
        if (res.ok) latencies.push(performance.now() - t);
        else errors++;
      } catch {
        errors++;
      }
      await new Promise((r) => setTimeout(r, everyMs));
    }
  })();
  return {
    latencies,
    errors: () => errors,
    async stop() {
      stopped = true;
      await loop;
    },
  };
}

/** `n` live-socket clients subscribed to `stats` (all traffic), counting what they receive. */
export async function liveClients(gs: GatescopeProcess, n: number) {
  const sockets: Socket[] = [];
  let received = 0;
  for (let i = 0; i < n; i++) {
    const socket = io(`${gs.http}live`, { transports: ['websocket'], reconnection: false });
    socket.on('stats', () => received++);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', () => resolve());
      socket.once('connect_error', reject);
    });
    await new Promise((resolve) => socket.emit('subscribe', {}, resolve));
    sockets.push(socket);
  }
  return {
    received: () => received,
    connected: () => sockets.filter((s) => s.connected).length,
    close: () => sockets.forEach((s) => s.close()),
  };
}

/** Entries stored per second over `seconds` (rows the collector committed to ClickHouse). */
export async function storedRate(gs: GatescopeProcess, seconds: number): Promise<number> {
  const a = await processMetric(gs, 'gatescope_clickhouse_rows_inserted_total', 'table="http_requests"');
  const t = performance.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const b = await processMetric(gs, 'gatescope_clickhouse_rows_inserted_total', 'table="http_requests"');
  return (b - a) / ((performance.now() - t) / 1000);
}

export const fmt = (x: number) => Math.round(x).toLocaleString('en-US');
