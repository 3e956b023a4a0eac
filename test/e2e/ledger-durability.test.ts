/**
 * The delivery ledger's invariant under stress, with the real all-in-one process: for every node, at every instant
 * the API answers, entries_received = entries_stored + sum(entries_dropped) + entries_in_flight (the range starting
 * before the node's first message) - while ClickHouse fails inserts (the server-mode test front injects 500s,
 * lost answers, a hung insert and a refused port, into the access-log inserts and the ledger's own), and across a
 * kill -9 and restart. At the end, what the ledger says was stored is what ClickHouse holds, per node, exactly.
 */
import { startDemoTraffic } from '@gatescope/demo-traffic';
import type { LedgerNode } from '@gatescope/ledger';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startClickHouseFront, type ClickHouseFront } from '../support/clickhouse-front.js';
import { startGatescopeProcess, type GatescopeProcess } from '../support/gatescope-process.js';
import { processMetric, sqlValue, until } from '../support/probes.js';

type Node = LedgerNode;

/** The tests poll the API several times a second: above the default rate limit (600 a minute). */
const POLLING = { GATESCOPE_RATE_LIMIT_PER_MINUTE: '100000' };

/** The ledger (range: the last day, so it starts before every node's first message); undefined on a 5xx. */
async function ledger(gs: GatescopeProcess): Promise<Node[] | undefined> {
  const res = await fetch(`${gs.http}api/v1/ingest/nodes?range=1d`);
  if (res.status >= 500) return undefined;
  expect(res.status).toBe(200);
  return ((await res.json()) as { nodes: Node[] }).nodes;
}
const dropped = (n: Node) => Object.values(n.entries_dropped).reduce((a, b) => a + b, 0);

/** Polls the ledger until stopped, checking the invariant on every answer; resolves with the answers checked. */
function watchInvariant(gs: GatescopeProcess) {
  let stop = false;
  const violations: string[] = [];
  const done = (async () => {
    let checked = 0;
    while (!stop) {
      const nodes = await ledger(gs).catch(() => undefined);
      for (const n of nodes ?? []) {
        checked++;
        if (
          n.entries_in_flight_at_start !== 0 ||
          n.entries_in_flight < 0 ||
          n.entries_received !== n.entries_stored + dropped(n) + n.entries_in_flight
        )
          violations.push(JSON.stringify(n));
      }
      await new Promise((r) => setTimeout(r, 150));
    }
    return checked;
  })();
  return {
    violations,
    stop: async () => {
      stop = true;
      return done;
    },
  };
}

/** Rows of http_requests per node, as ClickHouse holds them. */
async function storedPerNode(gs: GatescopeProcess, node: string): Promise<number> {
  return sqlValue(gs, `SELECT count() FROM gatescope.http_requests WHERE node_id = '${node}'`);
}

describe('server mode: ClickHouse fails inserts under load', () => {
  let front: ClickHouseFront;
  let gs: GatescopeProcess;
  beforeAll(async () => {
    front = await startClickHouseFront();
    gs = await startGatescopeProcess({
      env: {
        CLICKHOUSE_URL: front.url,
        GATESCOPE_CLICKHOUSE_TIMEOUT_MS: '3000',
        GATESCOPE_BATCH_MAX_DELAY_MS: '200',
        ...POLLING,
      },
    });
  });
  afterAll(async () => {
    await gs?.stop();
    await front?.close();
  });

  it('every answer balances, and at the end received = stored = sent, per node, with ClickHouse holding exactly that', async () => {
    const watch = watchInvariant(gs);
    const traffic = startDemoTraffic({ target: gs.als, rps: 2_000, streams: 4, flushMs: 100, seed: 14 });
    const RAW = /^\s*INSERT INTO gatescope\.http_requests \(/;
    const LEDGER = /^\s*INSERT INTO gatescope\.ingest_ledger \(/;
    const faults = [
      { kind: 'error', count: 2, match: RAW },
      // The ledger's insert lands, then its answer is lost: the retry (same token) must not count twice.
      { kind: 'error', after: true, match: LEDGER },
      { kind: 'reset', after: true, match: RAW },
      { kind: 'reset', after: true, match: LEDGER },
      { kind: 'error', count: 3, match: LEDGER },
      { kind: 'hang', match: LEDGER },
    ] as const;
    for (const f of faults) await front.fault({ ...f }).done;
    await front.fault({ kind: 'refuse', forMs: 2_000 }).done;
    await new Promise((r) => setTimeout(r, 1_000));
    const sent = await traffic.end();
    let node: Node | undefined;
    await until(
      async () => {
        node = (await ledger(gs))?.[0];
        return node?.entries_received === sent && node.entries_in_flight === 0;
      },
      'every entry received and settled in the ledger',
      120_000,
    );
    const checked = await watch.stop();
    expect(watch.violations).toEqual([]);
    expect(checked).toBeGreaterThan(20);
    expect(node).toMatchObject({ entries_received: sent, entries_stored: sent, entries_dropped: {} });
    expect(await storedPerNode(gs, node!.node_id)).toBe(sent);
    expect(await processMetric(gs, 'gatescope_ingest_ledger_insert_errors_total')).toBeGreaterThanOrEqual(6);
    expect(sent).toBeGreaterThan(5_000);
  }, 240_000);
});

describe('kill -9 and restart', () => {
  it('the ledger balances before, during and after the replay; what it says was stored is what ClickHouse holds', async () => {
    const gs = await startGatescopeProcess({ env: { GATESCOPE_BATCH_MAX_DELAY_MS: '200', ...POLLING } });
    const traffic = startDemoTraffic({ target: gs.als, rps: 3_000, streams: 4, flushMs: 100, seed: 9 });
    const watch = watchInvariant(gs);
    await until(
      async () => ((await ledger(gs))?.[0]?.entries_stored ?? 0) > 6_000,
      'two seconds of traffic stored and booked',
      60_000,
    );
    await watch.stop();
    expect(watch.violations).toEqual([]);
    const durable = await processMetric(gs, 'gatescope_wal_entries_durable_total');
    await gs.kill();
    await traffic.stop();

    const again = await startGatescopeProcess({ dataDir: gs.dataDir, env: POLLING });
    const after = watchInvariant(again);
    let node: Node | undefined;
    await until(
      async () => {
        node = (await ledger(again))?.[0];
        return (
          node !== undefined &&
          node.entries_in_flight === 0 &&
          (await processMetric(again, 'gatescope_wal_bytes')) === 0
        );
      },
      'the replayed batches stored and booked',
      60_000,
    );
    // A beat later, the ledger still agrees (nothing booked twice by a late retry).
    await new Promise((r) => setTimeout(r, 1_500));
    node = (await ledger(again))![0];
    await after.stop();
    expect(after.violations).toEqual([]);
    const held = await storedPerNode(again, node.node_id);
    expect(node.entries_stored).toBe(held);
    expect(held).toBeGreaterThanOrEqual(durable);
    // Everything received is stored, or was lost with the process before it was durable (and says so).
    expect(Object.keys(node.entries_dropped).filter((r) => r !== 'lost_at_restart')).toEqual([]);
    expect(node.entries_received).toBe(node.entries_stored + dropped(node));
    expect(await again.stop()).toBe(0);
  }, 180_000);
});
