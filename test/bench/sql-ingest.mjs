// Ingest while an analyst runs big ad-hoc SQL: stored rows/s before and during back-to-back
// `SELECT * FROM http_requests LIMIT 95000` (95k rows x 40+ columns, the query that cut ingest to a third on the
// demo), side by side for the old setup (libuv's default 4 threads, the engine's default threads per query) and the
// new defaults (16 threads in the pool, one engine thread per SQL statement). Each variant is the real all-in-one
// process: first seeded at full speed by the ingest benchmark's client (a process of its own), then fed at a steady
// demo-like rate (RATE entries/s, realistic traffic over real gRPC) while the SQL runs.
// Run under the lock: flock /work/.locks/heavy node test/bench/sql-ingest.mjs
import { fork, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startDemoTraffic } from '@gatescope/demo-traffic';
import { report } from './report.mjs';

const RATE = Number(process.env.RATE ?? 2000);

const MAIN = fileURLToPath(new URL('../../services/gatescope/dist/main.cjs', import.meta.url));
const CLIENT = fileURLToPath(new URL('./ingest-client.mjs', import.meta.url));
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)] : NaN;
};

async function start(env) {
  const dataDir = mkdtempSync(join(tmpdir(), 'gs-bench-sql-'));
  const child = spawn(process.execPath, [MAIN], {
    env: {
      ...process.env,
      GATESCOPE_DATA_DIR: dataDir,
      GATESCOPE_HTTP_PORT: '0',
      GATESCOPE_ALS_PORT: '0',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  const up = await new Promise((resolve, reject) => {
    child.stdout.on('data', (d) => {
      out += d;
      const line = out.split('\n').find((l) => l.includes('"gatescope is up"'));
      if (line) resolve(JSON.parse(line));
    });
    child.once('exit', (c) => reject(new Error(`exited ${c}: ${out}`)));
  });
  return {
    http: up.http,
    alsPort: Number(up.als.split(':').pop()),
    async stop() {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

async function inserted(http) {
  const text = await (await fetch(`${http}metrics`)).text();
  const m = /gatescope_clickhouse_rows_inserted_total\{table="http_requests"\} (\d+)/.exec(text);
  return m ? Number(m[1]) : 0;
}

async function variant(name, env) {
  const gs = await start(env);
  // Seed rows for the SQL to read, then a steady rate.
  const client = fork(CLIENT, [String(gs.alsPort), '400000', '4', '100'], { stdio: 'inherit' });
  await new Promise((r) => client.once('message', r));
  client.send('go');
  await new Promise((r) => client.once('message', r));
  while ((await inserted(gs.http)) < 400_000) await new Promise((r) => setTimeout(r, 200));
  // The seed is stored: let the client close its streams and exit (it waits for this, as Envoy never half-closes).
  client.send('stop');
  await new Promise((r) => client.once('exit', r));
  const demo = RATE > 0 ? startDemoTraffic({ target: `127.0.0.1:${gs.alsPort}`, rps: RATE }) : undefined;
  const samples = { before: [], during: [] };
  const sqlTimes = [];
  const serverTimes = [];
  const sizes = [];
  let phase = 'warmup';
  let last = await inserted(gs.http);
  let lastT = performance.now();
  const sampler = setInterval(async () => {
    const n = await inserted(gs.http);
    const t = performance.now();
    if (phase !== 'warmup') samples[phase].push(((n - last) / (t - lastT)) * 1000);
    last = n;
    lastT = t;
  }, 1000);
  await new Promise((r) => setTimeout(r, 4000));
  phase = 'before';
  await new Promise((r) => setTimeout(r, 8000));
  phase = 'during';
  const until = performance.now() + 12_000;
  let rows = 0;
  while (performance.now() < until) {
    const t0 = performance.now();
    const res = await fetch(`${gs.http}api/v1/sql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: 'SELECT * FROM http_requests LIMIT 95000' }),
    });
    // Read like a client elsewhere would, without parsing 70 MB here on the same two cores: bytes and the tail.
    let size = 0;
    let tail = '';
    for await (const chunk of res.body) {
      size += chunk.length;
      tail = (tail + Buffer.from(chunk).toString('utf8')).slice(-8192);
    }
    sqlTimes.push((performance.now() - t0) / 1000);
    rows = Number(/"rows":(\d+)/.exec(tail)?.[1] ?? NaN);
    serverTimes.push(Number(/"elapsed":([\d.]+)/.exec(tail)?.[1] ?? NaN));
    sizes.push(size);
  }
  phase = 'done';
  clearInterval(sampler);
  await demo?.stop();
  await gs.stop();
  const before = median(samples.before);
  const during = median(samples.during);
  report(
    `${name.padEnd(44)} ingest before ${Math.round(before).toLocaleString('en')}/s, during SQL ${Math.round(during).toLocaleString('en')}/s (ratio ${(during / before).toFixed(2)}); ` +
      `SQL ${sqlTimes.length} x ${rows} rows (${(median(sizes) / 1e6).toFixed(0)} MB of JSON), median ${median(sqlTimes).toFixed(2)} s to the last byte (${median(serverTimes).toFixed(2)} s reading the engine)`,
  );
  return { before, during };
}

const old = await variant('pool 4, SQL engine threads 2 (old setup)', {
  UV_THREADPOOL_SIZE: '4',
  GATESCOPE_SQL_MAX_THREADS: '2',
});
const now = await variant('pool 16, SQL engine threads 1 (new defaults)', {
  UV_THREADPOOL_SIZE: '16',
  GATESCOPE_SQL_MAX_THREADS: '1',
});
report(`during/before: ${(old.during / old.before).toFixed(2)} -> ${(now.during / now.before).toFixed(2)}`);
