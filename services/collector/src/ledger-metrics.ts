import { NodeLabelCap, OTHER, parseNodeKey, type LedgerBook, type NodeCounters } from '@gatescope/ledger';
import { Counter, Gauge, type Registry } from 'prom-client';

const NODE_LABELS = ['node_id', 'node_cluster', 'log_name'] as const;
type NodeLabels = Record<(typeof NODE_LABELS)[number], string>;
const OTHER_LABELS: NodeLabels = { node_id: OTHER, node_cluster: OTHER, log_name: OTHER };

/**
 * The delivery ledger per gateway node as Prometheus series, read from the collector's book when scraped. Label
 * cardinality is bounded: the first GATESCOPE_LEDGER_MAX_METRIC_NODES nodes this process sees get series of their
 * own, the rest are added into `node_id="other"` (see NodeLabelCap). Counters count since the process started.
 */
export function createLedgerMetrics(
  registry: Registry,
  book: LedgerBook,
  maxNodes: number,
  state: { inFlight(): ReadonlyMap<string, number>; openStreams(): ReadonlyMap<string, number> },
): void {
  const registers = [registry];
  const cap = new NodeLabelCap(maxNodes);
  const labelsOf = (key: string): NodeLabels => {
    if (!cap.owns(key)) return OTHER_LABELS;
    const n = parseNodeKey(key);
    return { node_id: n.nodeId, node_cluster: n.nodeCluster, log_name: n.logName };
  };
  /** A counter (or gauge) whose series are summed per label set from every node's value. */
  const perNode = (
    values: () => Iterable<[string, number, Record<string, string>?]>,
  ): ((this: { reset(): void; inc?: unknown; set?: unknown }) => void) =>
    function collect(this: { reset(): void }) {
      const sums = new Map<string, { labels: Record<string, string>; value: number }>();
      for (const [key, value, extra] of values()) {
        const labels = { ...labelsOf(key), ...extra };
        const id = JSON.stringify(labels);
        const s = sums.get(id);
        if (s) s.value += value;
        else sums.set(id, { labels, value });
      }
      this.reset();
      for (const { labels, value } of sums.values()) {
        const m = this as unknown as { inc?(l: object, v: number): void; set?(l: object, v: number): void };
        if (m.inc) m.inc(labels, value);
        else m.set!(labels, value);
      }
    };
  const totals = function* (pick: (c: NodeCounters) => number) {
    for (const [key, c] of book.totals) yield [key, pick(c)] as [string, number];
  };
  const byReason = function* (pick: (c: NodeCounters) => Record<string, number>) {
    for (const [key, c] of book.totals)
      for (const [reason, n] of Object.entries(pick(c)))
        yield [key, n, { reason }] as [string, number, Record<string, string>];
  };
  new Counter({
    name: 'gatescope_ingest_node_messages_total',
    help: 'ALS messages received per gateway node (node_id, node_cluster, log_name; nodes over GATESCOPE_LEDGER_MAX_METRIC_NODES are summed into "other").',
    labelNames: NODE_LABELS,
    registers,
    collect: perNode(() => totals((c) => c.messages)) as never,
  });
  new Counter({
    name: 'gatescope_ingest_node_entries_received_total',
    help: 'Access-log entries decoded per gateway node.',
    labelNames: NODE_LABELS,
    registers,
    collect: perNode(() => totals((c) => c.entriesReceived)) as never,
  });
  new Counter({
    name: 'gatescope_ingest_node_entries_stored_total',
    help: 'Entries per gateway node that ClickHouse committed (booked once their batch settled).',
    labelNames: NODE_LABELS,
    registers,
    collect: perNode(() => totals((c) => c.entriesStored)) as never,
  });
  new Counter({
    name: 'gatescope_ingest_node_entries_dropped_total',
    help: 'Entries per gateway node dead-lettered or lost, by reason: insert_refused, start_time_out_of_range, dead_letter_full, lost_at_restart.',
    labelNames: [...NODE_LABELS, 'reason'],
    registers,
    collect: perNode(() =>
      byReason((c) => Object.fromEntries(Object.entries(c.entriesDropped).filter(([, n]) => n > 0))),
    ) as never,
  });
  new Counter({
    name: 'gatescope_ingest_node_messages_rejected_total',
    help: 'ALS messages per gateway node refused (the stream got a gRPC error), by reason.',
    labelNames: [...NODE_LABELS, 'reason'],
    registers,
    collect: perNode(() => byReason((c) => c.messagesRejected)) as never,
  });
  new Gauge({
    name: 'gatescope_ingest_node_entries_in_flight',
    help: 'Entries per gateway node received and not yet stored or dropped (in memory or in the write-ahead log).',
    labelNames: NODE_LABELS,
    registers,
    collect: perNode(() => state.inFlight()) as never,
  });
  new Gauge({
    name: 'gatescope_ingest_node_streams_open',
    help: 'ALS streams open per gateway node on this collector.',
    labelNames: NODE_LABELS,
    registers,
    collect: perNode(() => state.openStreams()) as never,
  });
  new Gauge({
    name: 'gatescope_ingest_node_last_message_timestamp_seconds',
    help: 'When this collector last received a message from the gateway node (Unix time); time() - this is its silence.',
    labelNames: NODE_LABELS,
    registers,
    collect: function (this: Gauge) {
      const latest = new Map<string, { labels: NodeLabels; at: number }>();
      for (const [key, c] of book.totals) {
        if (c.lastSeenMs === undefined) continue;
        const labels = labelsOf(key);
        const id = JSON.stringify(labels);
        const prev = latest.get(id);
        if (!prev || prev.at < c.lastSeenMs) latest.set(id, { labels, at: c.lastSeenMs });
      }
      this.reset();
      for (const { labels, at } of latest.values()) this.set(labels, at / 1000);
    },
  });
  new Gauge({
    name: 'gatescope_ingest_nodes_folded',
    help: 'Gateway nodes beyond GATESCOPE_LEDGER_MAX_METRIC_NODES whose series are summed into node_id="other".',
    registers,
    collect: function (this: Gauge) {
      for (const key of book.totals.keys()) cap.owns(key);
      this.set(cap.foldedCount);
    },
  });
}
