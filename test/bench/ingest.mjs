// Ingest benchmark, as users run gatescope: the all-in-one process started the way the README says
// (`node services/gatescope/dist/main.cjs`, what `npm start` runs; default settings, write-ahead log on), and a
// separate client process (test/load/als-load.mjs) streaming realistic Istio-shaped traffic over loopback as fast as
// gatescope takes it: unique request ids, current start times, 48 routes, thousands of paths with query strings,
// thousands of client addresses (the cardinalities are printed with the result).
//
// In the same run, printed side by side:
// - end-to-end entries/s, timed until every entry is counted in ClickHouse; lost entries; peak RSS;
// - CPU per 100k entries, whole process and by thread (from /proc/<pid>/task: node's threads, the decoder
//   threads, the engine's pipelines and merges);
// - batches (rows per insert), time inside inserts, group commits;
// - freshness under that load: probe entries sent from this process on a stream of their own, timed until they
//   show in a `stats` push and in a `tail` push of the live socket (p50/p95);
// - the engine's own limit on the same rows: INSERT … SELECT FROM file() (JSONEachRow), after the process stopped,
//   with the ratio.
// The collector-only figure (no API, live server or UI in the process; a pool of repeated messages) is a diagnostic
// of its own: collector-only.mjs.
import { fork, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { encodeStreamAccessLogsMessage, HTTP_REQUEST_COLUMNS } from '@gatescope/als';
import { createClickHouse } from '@gatescope/clickhouse';
import { io } from 'socket.io-client';
import { report } from './report.mjs';
import { AlsClient, entry, identifierMessage, routeCatalogue } from './traffic.mjs';

const TOTAL = Number(process.env.BENCH_INGEST_ENTRIES ?? 600_000);
const RUNS = Number(process.env.BENCH_INGEST_RUNS ?? 3);
const TRAFFIC = { streams: 4, perMessage: 100, routes: 48, paths: 5_000, clients: 4_000 };
const PROBE_EVERY_MS = 250;
const RUN_DEADLINE_S = Number(process.env.BENCH_INGEST_DEADLINE_S ?? 180);
const TOKEN =
  process.env.BENCH_TOKEN ??
  `bench-${Math.random().toString(36).slice(2)}${Math.random().toString(36).slice(2)}`;
const MAIN = fileURLToPath(new URL('../../services/gatescope/dist/main.cjs', import.meta.url));
const LOAD_CLIENT = fileURLToPath(new URL('../load/als-load.mjs', import.meta.url));

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const quantile = (xs, q) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
};
const fmt = (x) => Math.round(x).toLocaleString('en-US');

// ---- the all-in-one process ---------------------------------------------------------------------------------
const dataDir = mkdtempSync(join(tmpdir(), 'gatescope-bench-e2e-'));
const env = {
  ...process.env,
  GATESCOPE_DATA_DIR: dataDir,
  GATESCOPE_HTTP_PORT: '0',
  GATESCOPE_ALS_PORT: '0',
  GATESCOPE_LOG_LEVEL: 'info',
  GATESCOPE_TOKENS: `bench:${TOKEN}:admin`,
  CLICKHOUSE_URL: '',
  // BENCH_SERVER_ENV='{"GATESCOPE_…":"…"}' runs the process with other settings (to compare).
  ...JSON.parse(process.env.BENCH_SERVER_ENV ?? '{}'),
};
// BENCH_SERVER_NODE_ARGS='--cpu-prof --cpu-prof-dir=/tmp/prof' profiles the process (written when it stops).
const nodeArgs = (process.env.BENCH_SERVER_NODE_ARGS ?? '').split(' ').filter(Boolean);
const server = spawn(process.execPath, [...nodeArgs, MAIN], { env, stdio: ['ignore', 'pipe', 'inherit'] });
const serverStartedAt = Date.now();
let log = '';
server.stdout.on('data', (d) => (log += d.toString()));
process.on('exit', () => {
  if (process.env.BENCH_DEBUG)
    console.error(
      log
        .split('\n')
        .filter((l) => !l.includes('"level":30'))
        .join('\n'),
    );
  server.kill('SIGKILL');
});
process.on('SIGINT', () => process.exit(130));
const stage = (s) => process.env.BENCH_DEBUG && console.error(`[bench] ${s}`);
const up = await new Promise((resolve, reject) => {
  const check = () => {
    const line = log.split('\n').find((l) => l.includes('"msg":"gatescope is up"'));
    if (line) resolve(JSON.parse(line));
  };
  server.stdout.on('data', check);
  server.once('exit', (code) => reject(new Error(`gatescope exited (${code}) before it was up:\n${log}`)));
});
stage('up');
const http = up.http.replace(/\/$/, '');
const alsTarget = up.als;

async function sql(query) {
  const res = await fetch(`${http}/api/v1/sql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
    body: JSON.stringify({ query }),
    signal: AbortSignal.timeout(60_000),
  });
  if (!res.ok) throw new Error(`SQL ${res.status}: ${await res.text()}`);
  return (await res.json()).data;
}
const count = async () =>
  Number((await sql(`SELECT count() AS n FROM http_requests WHERE authority != '${PROBE_AUTHORITY}'`))[0].n);

/** Prometheus text -> { name{labels}: value } for the few series read here. */
async function metrics() {
  const text = await (
    await fetch(`${http}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } })
  ).text();
  const out = new Map();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    out.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return out;
}
const metric = (m, name) => m.get(name) ?? 0;
/** The q-quantile of a Prometheus histogram's increase between two scrapes (linear within a bucket, as PromQL). */
function histogramQuantile(m0, m1, name, q) {
  const buckets = [...m1]
    .filter(([k]) => k.startsWith(`${name}_bucket{`))
    .map(([k, v]) => [Number(/le="([^"]+)"/.exec(k)[1]), v - metric(m0, k)])
    .sort((a, b) => a[0] - b[0]);
  const total = buckets.at(-1)?.[1] ?? 0;
  if (total === 0) return NaN;
  let prevLe = 0;
  let prevCount = 0;
  for (const [le, count] of buckets) {
    if (count >= q * total) {
      if (!Number.isFinite(le)) return prevLe;
      return prevLe + ((le - prevLe) * (q * total - prevCount)) / Math.max(1, count - prevCount);
    }
    prevLe = le;
    prevCount = count;
  }
  return prevLe;
}

/**
 * CPU ticks by thread of the gatescope process (Linux /proc). Threads are grouped by name with digits stripped.
 * Node 24 and later name their threads: `WorkerThread` (worker_threads: gatescope's only ones are the decoders),
 * `V8Worker` (V8's helpers: concurrent GC, compilers), `libuv-worker`. On Node 20 every node thread bears the process
 * name: the main thread is told apart (tid = pid), the decoders and V8's helpers are not.
 */
function threadTicks(pid) {
  const byThread = new Map();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      byThread.set(tid, { name, ticks: Number(fields[11]) + Number(fields[12]) });
    } catch {
      // the thread ended meanwhile
    }
  }
  return byThread;
}
function threadLabel(pid, tid, name) {
  if (String(tid) === String(pid)) return 'node main (event loop)';
  const bare = name.replace(/^node-/, '');
  if (bare === 'WorkerThread') return 'decoder threads';
  if (bare === 'V8Worker') return 'V8 helpers (GC, compilers)';
  if (name === 'node') return 'node other (decoders, V8 helpers)';
  return bare.replace(/[0-9]+$/, '');
}
const processTicks = (pid) => {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return Number(fields[11]) + Number(fields[12]);
};
const statusKb = (status, field) => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? 0) * 1024;
const rssBytes = (pid) => statusKb(readFileSync(`/proc/${pid}/status`, 'utf8'), 'VmRSS');
// Peak RSS over the process's whole life here, not only while a run is timed: the merges that follow each run and
// the shutdown count too. At that peak: anonymous memory (heaps: V8's, the engine's) against file-backed pages (the
// engine's mapped code), and what the benchmark was doing then.
let phase = 'starting, idle until the live window is warm';
let lifePeakRss = 0;
let lifePeakSplit = { anon: 0, file: 0, phase };
const lifeRssTimer = setInterval(() => {
  try {
    const status = readFileSync(`/proc/${server.pid}/status`, 'utf8');
    const rss = statusKb(status, 'VmRSS');
    if (rss > lifePeakRss) {
      lifePeakRss = rss;
      lifePeakSplit = {
        anon: statusKb(status, 'RssAnon'),
        file: statusKb(status, 'RssFile') + statusKb(status, 'RssShmem'),
        phase,
      };
    }
  } catch {
    // the process is gone
  }
}, 100);

// ---- freshness probes: own stream, own route per probe, own authority (the tail's filter) --------------------
const PROBE_AUTHORITY = 'freshness-probe.bench';
const socket = io(`${http}/live`, { transports: ['websocket'], auth: { token: TOKEN } });
await new Promise((r, j) => {
  socket.once('connect', r);
  socket.once('connect_error', j);
});
const ack = (event, arg) =>
  new Promise((r, j) =>
    socket.emit(event, arg, (reply) => (reply.ok ? r(reply) : j(new Error(JSON.stringify(reply))))),
  );
stage('socket');
if (!process.env.BENCH_NO_LIVE) {
  await ack('subscribe', {});
  await ack('tail', { authority: PROBE_AUTHORITY });
}
const probeSent = new Map(); // route -> { at, stats?, tail? }
socket.on('stats', (s) => {
  const at = performance.now();
  for (const r of s.routes) {
    const p = probeSent.get(r.route);
    if (p && p.stats === undefined) {
      p.stats = at - p.at;
      p.statsServer = s.ts - p.epoch;
    }
  }
});
socket.on('tail', (t) => {
  const at = performance.now();
  for (const row of t.rows) {
    const p = probeSent.get(row.route_name);
    if (p && p.tail === undefined) p.tail = at - p.at;
  }
});
const probeClient = new AlsClient(alsTarget, grpc.credentials.createInsecure(), {
  'grpc.use_local_subchannel_pool': 1,
});
const probeCall = probeClient.StreamAccessLogs(() => {});
probeCall.write(identifierMessage(99));
const [, probeCluster] = routeCatalogue(1)[0];
let probes = 0;
function sendProbe(tag) {
  const route = `probe-${tag}-${probes++}`;
  const bytes = encodeStreamAccessLogsMessage({
    httpLogs: {
      logEntry: [
        entry(Date.now(), {
          routes: [[route, probeCluster, '/probe']],
          authority: PROBE_AUTHORITY,
          requestId: `probe-${route}`,
        }),
      ],
    },
  });
  probeSent.set(route, { at: performance.now(), epoch: Date.now() });
  probeCall.write(bytes);
}

// ---- one run -----------------------------------------------------------------------------------------------
let cardinalityShape;
let bytesPerEntry;
async function run(i) {
  const before = await count();
  const m0 = await metrics();
  const client = fork(
    LOAD_CLIENT,
    [
      JSON.stringify({
        target: alsTarget,
        rate: Number(process.env.BENCH_INGEST_RATE ?? 0),
        total: TOTAL,
        ...TRAFFIC,
        prefix: `r${i}`,
        waitForGo: true,
      }),
    ],
    { stdio: 'inherit' },
  );
  stage('client');
  const ready = await new Promise((r) => client.on('message', (m) => m.ready && r(m.ready)));
  cardinalityShape = ready.cardinality;
  bytesPerEntry = ready.bytesPerEntry;
  const done = new Promise((r) => client.on('message', (m) => m.done && r(m.done)));
  // When the client had sent everything and every stream was answered (the collector had read it all).
  let readAt;
  // CPU of both processes until then: how much of the machine the collector had while the client was sending.
  let readTicks;
  const pid = server.pid;
  void done.then((d) => {
    readAt = performance.now();
    readTicks = { server: processTicks(pid) - p0, client: d.cpuSeconds * 100 };
  });
  let peakRss = rssBytes(pid);
  const rssTimer = setInterval(() => (peakRss = Math.max(peakRss, rssBytes(pid))), 100);
  const t0Ticks = threadTicks(pid);
  const p0 = processTicks(pid);
  const t0 = performance.now();
  stage('go');
  client.send('go');
  const probeTimer = setInterval(() => process.env.BENCH_NO_PROBES || sendProbe(`r${i}`), PROBE_EVERY_MS);
  let stored = 0;
  // A run that has not stored everything after RUN_DEADLINE_S is reported as such (stored so far, not a rate).
  const deadline = t0 + RUN_DEADLINE_S * 1000;
  while ((stored = (await count()) - before) < TOTAL && performance.now() < deadline) {
    if (process.env.BENCH_DEBUG) {
      const m = await metrics();
      stage(
        `stored ${stored} ` +
          [...m]
            .filter(([k]) =>
              /rows_inserted|als_entries_received|wal_entries_durable|wal_segments|pending_rows|backpressure/.test(
                k,
              ),
            )
            .map(([k, v]) => `${k.replace('gatescope_', '')}=${v}`)
            .join(' '),
      );
    }
    await sleep(200);
  }
  const seconds = (performance.now() - t0) / 1000;

  clearInterval(probeTimer);
  const cpuTicks = processTicks(pid) - p0;
  const t1Ticks = threadTicks(pid);
  clearInterval(rssTimer);
  const { sent } = await Promise.race([done, sleep(5_000).then(() => ({ sent: NaN }))]);
  // The client's CPU until it had sent everything and its streams were answered (it may have exited since).
  const clientTicks = readTicks?.client ?? NaN;
  client.kill();
  const byLabel = new Map();
  for (const [tid, { name, ticks }] of t1Ticks) {
    const label = threadLabel(pid, tid, name);
    const d = ticks - (t0Ticks.get(tid)?.ticks ?? 0);
    byLabel.set(label, (byLabel.get(label) ?? 0) + d);
  }
  if (process.env.BENCH_DEBUG)
    console.error(
      `[bench] ticks by thread: ${[...t1Ticks]
        .map(([tid, { name, ticks }]) => [tid, name, ticks - (t0Ticks.get(tid)?.ticks ?? 0)])
        .filter(([, , t]) => t > 0)
        .sort((a, b) => b[2] - a[2])
        .map(([tid, name, t]) => `${tid}:${name}=${t}`)
        .join(' ')}`,
    );
  const m1 = await metrics();
  const d = (name) => metric(m1, name) - metric(m0, name);
  if (stored < TOTAL)
    report(
      `  run ${i + 1}: only ${fmt(stored)} of ${fmt(TOTAL)} entries counted in ClickHouse after ${RUN_DEADLINE_S} s (collector metrics: ${[
        ...m1,
      ]
        .filter(([k]) =>
          /rows_inserted|entries_received|wal_entries_durable|wal_segments|pending_rows/.test(k),
        )
        .map(([k, v]) => `${k.replace('gatescope_', '')}=${v}`)
        .join(' ')})`,
    );
  return {
    sent,
    stored,
    complete: stored >= TOTAL,
    seconds,
    rate: stored / seconds,
    readSeconds: readAt === undefined ? NaN : (readAt - t0) / 1000,
    cpuPer100k: (cpuTicks / 100 / stored) * 100_000,
    clientCpuPer100k: (clientTicks / 100 / stored) * 100_000,
    // Cores busy while the client was sending (its ticks and the server's until every stream was answered).
    readCores:
      readTicks === undefined
        ? { server: NaN, client: NaN }
        : {
            server: readTicks.server / 100 / ((readAt - t0) / 1000),
            client: readTicks.client / 100 / ((readAt - t0) / 1000),
          },
    byThread: new Map([...byLabel].map(([k, v]) => [k, (v / 100 / stored) * 100_000])),
    peakRss,
    inserts: d('gatescope_clickhouse_insert_duration_seconds_count{table="http_requests"}'),
    insertSeconds: d('gatescope_clickhouse_insert_duration_seconds_sum{table="http_requests"}'),
    commits: d('gatescope_wal_commit_duration_seconds_count'),
    commitSeconds: d('gatescope_wal_commit_duration_seconds_sum'),
    decodeDelay: [0.5, 0.95].map((q) => histogramQuantile(m0, m1, 'gatescope_als_decode_delay_seconds', q)),
  };
}

// `stats` come from the collector's live window once it covers the whole stats window (60 s after the start; before
// that, from ClickHouse): measure freshness the way a process that has been up for a minute serves it.
const LIVE_WINDOW_WARMUP_MS = 62_000;
if (!process.env.BENCH_NO_LIVE)
  await sleep(Math.max(0, serverStartedAt + LIVE_WINDOW_WARMUP_MS - Date.now()));
stage('runs');
const runs = [];
for (let i = 0; i < RUNS; i++) {
  phase = `run ${i + 1}`;
  runs.push(await run(i));
  phase = `after run ${i + 1} (the last probes, merges)`;
  await sleep(2_000); // let the last probes land and merges settle between runs
}
const probeResults = [...probeSent.values()];
const statsLat = probeResults.filter((p) => p.stats !== undefined).map((p) => p.stats);
const tailLat = probeResults.filter((p) => p.tail !== undefined).map((p) => p.tail);

const liveCounters = await metrics();

socket.disconnect();
probeCall.end();
probeClient.close();
phase = 'stopping (SIGTERM: the last commit)';
server.kill('SIGTERM');
await new Promise((r) => server.once('exit', r));
clearInterval(lifeRssTimer);

// ---- the engine's own limit on the same rows, in this process, on the data the product stored ---------------
const ch = await createClickHouse({ engine: 'embedded', dataDir, database: 'gatescope' });
// The stored traffic's cardinalities, counted here once the process has stopped: the benchmark's own check (hash
// sets of every request id) is not the product's work, and run through its SQL API it was the process's peak RSS.
const card = (
  await (
    await ch.client.query({
      query: `SELECT count() AS entries, uniqExact(request_id) AS request_ids, uniqExact(route_name) AS routes,
                     uniqExact(path) AS paths, uniqExact(downstream_remote_address) AS clients,
                     uniqExact(upstream_cluster) AS clusters
              FROM gatescope.http_requests WHERE authority != '${PROBE_AUTHORITY}'`,
      format: 'JSONEachRow',
    })
  ).json()
)[0];
const file = join(dataDir, 'baseline.jsonl');
const cols = HTTP_REQUEST_COLUMNS.map((c) => c.name).join(', ');
await ch.client.command({
  query: `SELECT ${cols} FROM gatescope.http_requests WHERE authority != '${PROBE_AUTHORITY}' LIMIT ${TOTAL} INTO OUTFILE '${file}' FORMAT JSONEachRow`,
});
await ch.client.command({
  query: 'CREATE TABLE gatescope.http_requests_baseline AS gatescope.http_requests',
});
const engineRuns = [];
for (let i = 0; i < 3; i++) {
  await ch.client.command({ query: 'TRUNCATE TABLE gatescope.http_requests_baseline' });
  const t = performance.now();
  await ch.client.command({
    query: `INSERT INTO gatescope.http_requests_baseline (${cols}) SELECT ${cols} FROM file('${file}', 'JSONEachRow')`,
  });
  engineRuns.push(TOTAL / ((performance.now() - t) / 1000));
}
await ch.close();
rmSync(dataDir, { recursive: true, force: true });

// ---- report ------------------------------------------------------------------------------------------------
const completeRuns = runs.filter((r) => r.complete);
const e2e = completeRuns.length ? median(completeRuns.map((r) => r.rate)) : NaN;
const engine = median(engineRuns);
const sent = runs.reduce((n, r) => n + r.sent, 0);
const stored = runs.reduce((n, r) => n + r.stored, 0);
const labels = [...new Set(runs.flatMap((r) => [...r.byThread.keys()]))]
  .map((l) => [l, median(runs.map((r) => r.byThread.get(l) ?? 0))])
  .filter(([, v]) => v >= 0.01)
  .sort((a, b) => b[1] - a[1]);
const inserts = runs.reduce((n, r) => n + r.inserts, 0);
const insertSeconds = runs.reduce((n, r) => n + r.insertSeconds, 0);
const commits = runs.reduce((n, r) => n + r.commits, 0);
const commitSeconds = runs.reduce((n, r) => n + r.commitSeconds, 0);
const s = (ms) => `${(ms / 1000).toFixed(2)} s`;

report(
  `\ningest through the all-in-one (node services/gatescope/dist/main.cjs, defaults, WAL on; client process: ${TRAFFIC.streams} streams x ${TRAFFIC.perMessage} entries/message, as fast as taken)`,
);
report(
  `  traffic                  ${fmt(card.entries)} entries stored: ${fmt(card.request_ids)} distinct request ids, ${card.routes} routes, ${fmt(card.paths)} paths with query strings, ${fmt(card.clients)} client addresses, ${card.clusters} upstream clusters; ${Math.round(bytesPerEntry)} B per entry on the wire (catalogue: ${JSON.stringify(cardinalityShape)})`,
);
report(`  sent / stored            ${fmt(sent)} / ${fmt(stored)} entries, lost ${fmt(sent - stored)}`);
report(
  `  end to end               ${fmt(e2e)} entries/s median of ${completeRuns.length} complete runs of ${RUNS} x ${fmt(TOTAL)} (${runs.map((r) => (r.complete ? fmt(r.rate) : `incomplete: ${fmt(r.stored)} stored`)).join(', ')}), timed until the last entry was counted in ClickHouse   (target >= 80,000; never < 70,000)`,
);
report(
  `  read by the collector    ${fmt(median(completeRuns.map((r) => TOTAL / r.readSeconds)))} entries/s median (the client's last entry read and its streams answered after ${completeRuns.map((r) => r.readSeconds.toFixed(1)).join(', ')} s; the rest of each run is the last batches' wait and inserts)`,
);
report(
  `  engine limit             ${fmt(engine)} rows/s (INSERT … SELECT FROM file() of ${fmt(TOTAL)} of the same rows as JSONEachRow, no rollups, median of 3)`,
);
report(`  ratio e2e / engine       ${(e2e / engine).toFixed(2)}   (target >= 0.45)`);
report(
  `  CPU                      ${median(runs.map((r) => r.cpuPer100k)).toFixed(2)} CPU-s per 100k entries, whole process (target <= 2)`,
);
report(`  CPU by thread (s/100k)   ${labels.map(([l, v]) => `${l} ${v.toFixed(2)}`).join(', ')}`);
report(
  `  the client process       ${median(runs.map((r) => r.clientCpuPer100k)).toFixed(2)} CPU-s per 100k entries; while it was sending, cores busy: gatescope ${median(completeRuns.map((r) => r.readCores.server)).toFixed(2)}, the client ${median(completeRuns.map((r) => r.readCores.client)).toFixed(2)} (of ${availableParallelism()} on this machine)`,
);
report(
  `  peak RSS                 ${(lifePeakRss / 2 ** 20).toFixed(0)} MiB over the process's life in the benchmark (at ${lifePeakSplit.phase}: ${(lifePeakSplit.anon / 2 ** 20).toFixed(0)} MiB anonymous, ${(lifePeakSplit.file / 2 ** 20).toFixed(0)} MiB file-backed); ${(Math.max(...runs.map((r) => r.peakRss)) / 2 ** 20).toFixed(0)} MiB while runs were timed (target < 1024)`,
);
report(
  `  inserts                  ${fmt(inserts)} batches, ${fmt(stored / Math.max(1, inserts))} rows each on average, ${(insertSeconds / Math.max(1, inserts)).toFixed(2)} s each (${insertSeconds.toFixed(1)} s inside ClickHouse inserts in all); ${fmt(commits)} WAL group commits, ${((commitSeconds / Math.max(1, commits)) * 1000).toFixed(1)} ms each (write + fdatasync)`,
);
report(
  `  freshness under load     stats: p50 ${s(quantile(statsLat, 0.5))}, p95 ${s(quantile(statsLat, 0.95))} (${statsLat.length}/${probeResults.length} probes seen); tail: p50 ${s(quantile(tailLat, 0.5))}, p95 ${s(quantile(tailLat, 0.95))} (${tailLat.length} seen)   (target p95 <= 1 s), probes sent -> pushed to a socket.io client, from a process up for over a minute (the live window covers the stats window)`,
);
report(
  `  decode delay (server)    p50 ${s(median(runs.map((r) => r.decodeDelay[0])) * 1000)}, p95 ${s(median(runs.map((r) => r.decodeDelay[1])) * 1000)}: a message read off its stream -> its entries decoded (gatescope_als_decode_delay_seconds; what the live view waits before its next flush and tick)`,
);
if (process.env.BENCH_DEBUG) {
  const srv = probeResults.filter((p) => p.statsServer !== undefined).map((p) => p.statsServer);
  report(
    `  [debug] probe sent -> stats computed (server ts): p50 ${s(quantile(srv, 0.5))}, p95 ${s(quantile(srv, 0.95))}`,
  );
}
void liveCounters;
process.exit(0);
