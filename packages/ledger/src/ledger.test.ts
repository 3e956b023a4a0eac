import { describe, expect, it } from 'vitest';
import { LedgerBook, NO_FIRST_SEEN, type LedgerRow } from './book.js';
import { nodeKey, parseNodeKey } from './keys.js';
import { NodeLabelCap } from './labels.js';
import { nodeStatus, shapeLedgerNodes, GONE_AFTER_MS, type LedgerNode } from './read.js';
import { ingestDropRate, ingestSamples, ingestSilenceSeconds } from './signals.js';

const A = nodeKey({
  nodeId: 'router~10.0.0.7~gw-1.ns~ns.svc.cluster.local',
  nodeCluster: 'gw',
  logName: 'als',
});
const B = nodeKey({ nodeId: 'b:with:colons', nodeCluster: '', logName: 'x' });

/** Sums of rows as ClickHouse's sum/sumMap would give them. */
function sums(rows: LedgerRow[]) {
  const out = { received: 0, stored: 0, inFlight: 0, dropped: 0, messages: 0 };
  for (const r of rows) {
    out.received += r.entries_received;
    out.stored += r.entries_stored;
    out.inFlight += r.entries_in_flight;
    out.dropped += Object.values(r.entries_dropped).reduce((a, b) => a + b, 0);
    out.messages += r.messages;
  }
  return out;
}

describe('node keys', () => {
  it('keep any three strings apart and come back whole', () => {
    expect(parseNodeKey(B)).toEqual({ nodeId: 'b:with:colons', nodeCluster: '', logName: 'x' });
    expect(nodeKey({ nodeId: 'a', nodeCluster: 'b,c', logName: '' })).not.toBe(
      nodeKey({ nodeId: 'a,b', nodeCluster: 'c', logName: '' }),
    );
    expect(parseNodeKey('')).toEqual({ nodeId: 'unknown', nodeCluster: '', logName: '' });
  });
});

describe('LedgerBook', () => {
  it('keeps received = stored + dropped + in flight over the rows it writes', () => {
    let now = Date.UTC(2026, 0, 1, 10, 0, 30);
    const book = new LedgerBook('c1', () => now);
    book.streamOpened(A);
    book.message(A);
    book.received(A, 10);
    book.message(B);
    book.rejected(B, 'malformed_protobuf');
    const rows = book.take();
    expect(book.take()).toEqual([]);
    now += 1_000;
    book.message(A);
    book.received(A, 5);
    rows.push(
      ...book.take(),
      ...book.resolution({
        stored: { [A]: 12 },
        dropped: { insert_refused: { [A]: 2 } },
        fromInFlight: true,
      }),
    );
    const a = sums(rows.filter((r) => r.node_id === parseNodeKey(A).nodeId));
    expect(a).toEqual({ received: 15, stored: 12, dropped: 2, inFlight: 1, messages: 2 });
    const b = rows.find((r) => r.node_id === 'b:with:colons')!;
    expect(b.messages_rejected).toEqual({ malformed_protobuf: 1 });
    expect(rows[0]).toMatchObject({ minute: '2026-01-01 10:00:00', streams_opened: 1, collector: 'c1' });
    // A row without a message does not pull min(first_seen) down.
    expect(book.resolution({ stored: { [A]: 1 }, dropped: {}, fromInFlight: true })[0].first_seen).toBe(
      NO_FIRST_SEEN,
    );
  });

  it('a replayed dead letter moves its entries out of their reason, not out of in flight', () => {
    const book = new LedgerBook('c1');
    const rows = book.resolution({
      stored: { [A]: 3 },
      dropped: {},
      fromInFlight: false,
      released: { reason: 'insert_refused', tally: { [A]: 3 } },
    });
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      entries_stored: 3,
      entries_in_flight: 0,
      entries_dropped: { insert_refused: -3 },
    });
  });

  it('at start, books what the WAL holds against what ClickHouse says was in flight', () => {
    const book = new LedgerBook('c1');
    const rows = book.correction(
      new Map([
        [A, { inFlight: 10, streamsOpen: 2 }],
        [B, { inFlight: 0, streamsOpen: 0 }],
      ]),
      new Map([
        [A, 7],
        [B, 4],
      ]),
    );
    const [a, b] = [A, B].map((k) => rows.find((r) => r.node_id === parseNodeKey(k).nodeId)!);
    // A: 3 were received and never made durable; its 2 streams died with the process.
    expect(a).toMatchObject({
      entries_in_flight: -3,
      entries_dropped: { lost_at_restart: 3 },
      streams_closed: 2,
    });
    // B: 4 are in the WAL whose counters never landed: received now.
    expect(b).toMatchObject({ entries_in_flight: 4, entries_received: 4 });
    expect(book.correction(new Map([[A, { inFlight: 7, streamsOpen: 0 }]]), new Map([[A, 7]]))).toEqual([]);
  });
});

describe('status and signals', () => {
  const T = Date.UTC(2026, 0, 2);
  it('live with an open stream however silent, stale after the threshold, gone a day later', () => {
    expect(nodeStatus({ streams_open: 1, last_seen_ms: T - 10 * 86_400_000 }, T, 60_000)).toBe('live');
    expect(nodeStatus({ streams_open: 0, last_seen_ms: T - 59_999 }, T, 60_000)).toBe('live');
    expect(nodeStatus({ streams_open: 0, last_seen_ms: T - 60_000 }, T, 60_000)).toBe('stale');
    expect(nodeStatus({ streams_open: 0, last_seen_ms: T - 60_000 - GONE_AFTER_MS }, T, 60_000)).toBe('gone');
  });

  it('shapes rows: zero reasons dropped, no first_seen without a message', () => {
    const [n] = shapeLedgerNodes(
      [
        {
          node_id: 'n',
          node_cluster: 'c',
          log_name: 'l',
          messages: '3',
          entries_received: '10',
          entries_stored: '8',
          entries_dropped: { insert_refused: '0', start_time_out_of_range: '2' },
          messages_rejected: {},
          entries_in_flight: '0',
          entries_in_flight_at_start: '0',
          streams_open: '-1',
          first_seen_ms: String(Date.parse('2299-12-31T23:59:59.999Z')),
          last_seen_ms: String(T - 1_000),
        },
      ],
      T,
      60_000,
    );
    expect(n).toMatchObject({
      entries_dropped: { start_time_out_of_range: 2 },
      first_seen: null,
      streams_open: 0,
      status: 'live',
    });
  });

  it('silence is the time since the last message; the drop rate counts every reason', () => {
    const node = {
      node_id: 'n',
      node_cluster: 'c',
      log_name: 'l',
      entries_received: 200,
      entries_dropped: { insert_refused: 3, lost_at_restart: 1 },
      last_seen: new Date(T - 180_000).toISOString(),
    } as LedgerNode;
    expect(ingestSilenceSeconds(node, T)).toBe(180);
    expect(ingestSilenceSeconds({ last_seen: null }, T)).toBeUndefined();
    expect(ingestDropRate(node)).toBe(0.02);
    expect(ingestDropRate([node, { ...node, entries_received: 0, entries_dropped: {} }])).toBe(0.02);
    expect(ingestDropRate({ entries_received: 0, entries_dropped: {} })).toBe(0);
    expect(ingestSamples([node], T)).toEqual([
      {
        metric: 'ingest_silence_seconds',
        labels: { node_id: 'n', node_cluster: 'c', log_name: 'l' },
        value: 180,
      },
      { metric: 'ingest_drop_rate', labels: { node_id: 'n', node_cluster: 'c', log_name: 'l' }, value: 0.02 },
    ]);
  });
});

describe('NodeLabelCap', () => {
  it('gives the first N nodes series of their own and folds the rest, for good', () => {
    const cap = new NodeLabelCap(2);
    expect([cap.owns('a'), cap.owns('b'), cap.owns('c'), cap.owns('a'), cap.owns('c')]).toEqual([
      true,
      true,
      false,
      true,
      false,
    ]);
    expect(cap.foldedCount).toBe(1);
  });
});
