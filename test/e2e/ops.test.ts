import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ISTIO_HTTP_STREAM } from '../fixtures/als.js';
import { alsClient } from '../support/als-client.js';
import { startClickHouseFront, type ClickHouseFront } from '../support/clickhouse-front.js';
import {
  runGatescopeCommand,
  SERVICES,
  startGatescopeProcess,
  startServiceProcess,
  type GatescopeProcess,
} from '../support/gatescope-process.js';

// Operating gatescope, on real processes against a ClickHouse server (the test front over the real engine):
// `/healthz` and `/readyz` of every service through each reason not to be ready (the schema pending, ClickHouse
// unreachable, shutdown begun), and every service's `/metrics` checked by Prometheus' own linter
// (`promtool check metrics`), the all-in-one process included.

let front: ClickHouseFront;
const procs: GatescopeProcess[] = [];
let collector: GatescopeProcess;
let api: GatescopeProcess;
let live: GatescopeProcess;
let allInOne: GatescopeProcess;

const env = () => ({
  CLICKHOUSE_URL: front.url,
  GATESCOPE_RETENTION_DAYS: '3650', // the fixtures are dated 2024
  GATESCOPE_BATCH_MAX_DELAY_MS: '200',
  GATESCOPE_CLICKHOUSE_TIMEOUT_MS: '3000',
  GATESCOPE_LIVE_TICK_MS: '500',
  GATESCOPE_DECODER_WORKERS: '1',
  GATESCOPE_METRICS_PUBLIC: '1',
});
const probe = async (base: string, path: 'readyz' | 'healthz') => {
  try {
    const res = await fetch(`${base}${path}`, { signal: AbortSignal.timeout(10_000) });
    return { status: res.status, body: (await res.json()) as { status?: string; error?: { code: string } } };
  } catch (err) {
    return { status: 0, body: { error: { code: `unreachable: ${(err as Error).message}` } } };
  }
};
const until = async (what: string, fn: () => Promise<boolean>, timeoutMs = 30_000) => {
  const deadline = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
};
const services = () => ({ collector, api, live });
/** The ALS port: the standalone collector opens it (and logs it) once the schema is ready. */
async function alsPortOf(p: GatescopeProcess): Promise<number> {
  if (p.alsPort) return p.alsPort;
  let port = 0;
  await until('the ALS port', async () => {
    const line = p
      .log()
      .split('\n')
      .find((l) => l.includes('"msg":"gatescope collector is up"'));
    if (line) port = Number((JSON.parse(line) as { als: string }).als.split(':').pop());
    return port > 0;
  });
  return port;
}

/** promtool's findings about gatescope's own metrics (prom-client's default process_/nodejs_ ones aside). */
function promtoolProblems(exposition: string): string[] {
  const r = spawnSync('promtool', ['check', 'metrics'], { input: exposition, encoding: 'utf8' });
  expect(r.error, 'promtool must be installed (test/setup/system-deps.sh)').toBeUndefined();
  return (r.stdout + r.stderr)
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !/^(process_|nodejs_)/.test(l));
}

beforeAll(async () => {
  front = await startClickHouseFront();
});
afterAll(async () => {
  await Promise.all(procs.map((p) => p.kill()));
  await front?.close();
});

describe('/healthz and /readyz on every service', () => {
  it('not ready while the schema is pending, alive all the same', async () => {
    collector = await startGatescopeProcess({
      env: env(),
      main: SERVICES.collector.main,
      upMessage: 'gatescope collector health endpoints are up',
    });
    api = await startServiceProcess('api', { env: env() });
    live = await startServiceProcess('live', { env: env() });
    procs.push(collector, api, live);
    for (const [name, p] of Object.entries(services())) {
      expect(await probe(p.http, 'healthz'), name).toEqual({ status: 200, body: { status: 'ok' } });
      const ready = await probe(p.http, 'readyz');
      expect(ready.status, name).toBe(503);
      expect(ready.body.error?.code, name).toBe('ERR_SCHEMA_PENDING');
    }
  });

  it('ready once `gatescope migrate` applied the schema', async () => {
    const { code } = await runGatescopeCommand(['migrate'], { env: env() });
    expect(code).toBe(0);
    for (const [name, p] of Object.entries(services()))
      await until(`${name} ready`, async () => (await probe(p.http, 'readyz')).status === 200);
    expect((await probe(api.http, 'readyz')).body).toEqual({ status: 'ready', clickhouse: 'server' });
  });

  it('not ready while ClickHouse is unreachable, ready again when it is back', async () => {
    const refusal = front.fault({ kind: 'refuse' });
    for (const [name, p] of Object.entries(services())) {
      const ready = await probe(p.http, 'readyz');
      expect(ready.status, name).toBe(503);
      expect(ready.body.error?.code, name).toBe('ERR_CLICKHOUSE_UNAVAILABLE');
      expect((await probe(p.http, 'healthz')).status, name).toBe(200);
    }
    refusal.clear();
    for (const [name, p] of Object.entries(services()))
      await until(`${name} ready again`, async () => (await probe(p.http, 'readyz')).status === 200);
  });
});

describe('/metrics of every service', () => {
  it(
    'passes promtool check metrics, with every service’s own metrics registered',
    { timeout: 120_000 },
    async () => {
      // Traffic, so that labelled series exist: ALS entries through the collector, a request to the API.
      const client = alsClient(await alsPortOf(collector));
      await client.ready();
      const { call } = client.open();
      for (const f of ISTIO_HTTP_STREAM) call.write(f.bytes);
      await until('the fixtures stored', async () => {
        const [row] = await front.rows<{ n: string }>('SELECT count() AS n FROM gatescope.http_requests');
        return Number(row?.n) > 0;
      });
      call.end();
      client.close();
      expect((await fetch(`${api.http}api/v1/summary?range=5m`)).status).toBe(200);

      const expected: Record<string, string[]> = {
        collector: [
          'gatescope_als_entries_received_total',
          'gatescope_clickhouse_rows_inserted_total',
          'gatescope_clickhouse_insert_duration_seconds',
          'gatescope_clickhouse_insert_rows',
          'gatescope_wal_bytes',
          'gatescope_als_open_streams',
        ],
        api: ['gatescope_api_http_request_duration_seconds', 'gatescope_sql_queries_total'],
        live: [
          'gatescope_live_sockets',
          'gatescope_live_stats_computations_total',
          'gatescope_live_tail_polls_total',
          'gatescope_live_query_errors_total',
        ],
      };
      for (const [name, p] of Object.entries(services())) {
        const text = await (await fetch(`${p.http}metrics`)).text();
        for (const metric of expected[name])
          expect(text, `${name} exposes ${metric}`).toMatch(new RegExp(`^# TYPE ${metric} `, 'm'));
        expect(promtoolProblems(text), name).toEqual([]);
      }

      // The all-in-one process registers every component's metrics on its one /metrics.
      allInOne = await startGatescopeProcess({ env: { ...env(), GATESCOPE_METRICS_PUBLIC: '1' } });
      procs.push(allInOne);
      const text = await (await fetch(`${allInOne.http}metrics`)).text();
      for (const metric of Object.values(expected).flat())
        if (
          metric !== 'gatescope_clickhouse_insert_rows' &&
          metric !== 'gatescope_clickhouse_insert_duration_seconds'
        )
          expect(text, `the all-in-one exposes ${metric}`).toMatch(new RegExp(`^# TYPE ${metric} `, 'm'));
      expect(promtoolProblems(text), 'all-in-one').toEqual([]);
    },
  );
});

describe('readiness once shutdown has begun', () => {
  it(
    'the collector and the all-in-one answer 503 ERR_SHUTTING_DOWN while they commit what they received',
    { timeout: 120_000 },
    async () => {
      for (const p of [collector, allInOne]) {
        // ClickHouse holds the next insert, so the shutdown has a batch to commit and takes a while.
        const hold = front.fault({ kind: 'hang', match: /^INSERT INTO gatescope\.http_requests/ });
        const client = alsClient(await alsPortOf(p));
        await client.ready();
        const { call } = client.open();
        for (const f of ISTIO_HTTP_STREAM) call.write(f.bytes);
        await until('the insert to hang', async () => hold.hits > 0);
        const exited = p.stop();
        await until('readiness to fail', async () => {
          const r = await probe(p.http, 'readyz');
          return r.status === 503 && r.body.error?.code === 'ERR_SHUTTING_DOWN';
        });
        // Alive all the same, and it finishes its shutdown once ClickHouse answers (the hung insert times out and
        // is retried with the same token).
        expect((await probe(p.http, 'healthz')).status).toBe(200);
        call.end();
        client.close();
        hold.clear();
        expect(await exited).toBe(0);
      }
    },
  );

  it('the API and the live server stop answering readiness on SIGTERM and exit cleanly', async () => {
    for (const p of [api, live]) {
      const exited = p.stop();
      await until('readiness to fail', async () => (await probe(p.http, 'readyz')).status !== 200);
      expect(await exited).toBe(0);
    }
  });
});
