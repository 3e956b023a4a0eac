import type { GatescopeProcess } from './gatescope-process.js';

/** Polls `check` until it holds; fails naming `what` after `ms`. */
export async function until(check: () => Promise<boolean>, what: string, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * A metric of a running process, from its `/metrics` (tokenless, or public): the sum of the series whose labels
 * contain `labels` (e.g. `reason="idle"`; '' sums them all). 0 when absent.
 */
export async function processMetric(
  gs: Pick<GatescopeProcess, 'http'>,
  name: string,
  labels = '',
): Promise<number> {
  const text = await (await fetch(`${gs.http}metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-z_]+)(\{[^}]*\})? (\S+)$/.exec(line);
    if (m && m[1] === name && (m[2] ?? '').includes(labels)) sum += Number(m[3]);
  }
  return sum;
}

/** The first row of a query through the process's SQL console (tokenless loopback: admin), every value a number. */
export async function sqlRow(
  gs: Pick<GatescopeProcess, 'http'>,
  query: string,
): Promise<Record<string, number>> {
  const res = await fetch(`${gs.http}api/v1/sql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query }),
  });
  const body = (await res.json()) as { data: Record<string, unknown>[]; error?: { message: string } };
  if (!res.ok) throw new Error(`SQL failed (${res.status}): ${body.error?.message}`);
  return Object.fromEntries(Object.entries(body.data[0]).map(([k, v]) => [k, Number(v)]));
}

/** The first value of the first row of a query through the process's SQL console. */
export async function sqlValue(gs: Pick<GatescopeProcess, 'http'>, query: string): Promise<number> {
  return Object.values(await sqlRow(gs, query))[0];
}

/**
 * Rows of `table` the collector has seen ClickHouse commit: it counts a batch once its INSERT answered, and ClickHouse
 * answers an INSERT only after every table it feeds (the rollups, materialized views of the raw table and of each
 * other) wrote its part. Wait on this, not on the raw table's count, before comparing the raw table with the rollups:
 * ClickHouse commits each target table of one INSERT on its own, the raw table first, so a count of the raw table can
 * see a batch whose rollups are not written yet (issue 9).
 */
export async function storedRows(
  gs: Pick<GatescopeProcess, 'http'>,
  table = 'http_requests',
): Promise<number> {
  return processMetric(gs, 'gatescope_clickhouse_rows_inserted_total', `table="${table}"`);
}

/** Raw count, distinct request ids, and the requests every rollup counted: equal when nothing is stored twice. */
export async function requestTally(gs: Pick<GatescopeProcess, 'http'>): Promise<number[]> {
  return [
    await sqlValue(gs, 'SELECT count() FROM gatescope.http_requests'),
    await sqlValue(gs, 'SELECT uniqExact(request_id) FROM gatescope.http_requests'),
    ...(await Promise.all(
      ['http_requests_1m', 'http_routes_1m', 'http_requests_1h', 'http_routes_1h', 'http_totals_1h'].map(
        (t) => sqlValue(gs, `SELECT sum(requests) FROM gatescope.${t}`),
      ),
    )),
  ];
}
