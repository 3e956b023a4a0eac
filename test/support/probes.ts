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

/** The first value of the first row of a query through the process's SQL console (tokenless loopback: admin). */
export async function sqlValue(gs: Pick<GatescopeProcess, 'http'>, query: string): Promise<number> {
  const res = await fetch(`${gs.http}api/v1/sql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query }),
  });
  const body = (await res.json()) as { data: Record<string, unknown>[]; error?: { message: string } };
  if (!res.ok) throw new Error(`SQL failed (${res.status}): ${body.error?.message}`);
  return Number(Object.values(body.data[0])[0]);
}

/** Raw count, distinct request ids, and the requests every rollup counted: equal when nothing is stored twice. */
export async function requestTally(gs: Pick<GatescopeProcess, 'http'>): Promise<number[]> {
  return [
    await sqlValue(gs, 'SELECT count() FROM gatescope.http_requests'),
    await sqlValue(gs, 'SELECT uniqExact(request_id) FROM gatescope.http_requests'),
    ...(await Promise.all(
      ['http_requests_1m', 'http_routes_1m', 'http_requests_1h', 'http_routes_1h'].map((t) =>
        sqlValue(gs, `SELECT sum(requests) FROM gatescope.${t}`),
      ),
    )),
  ];
}
