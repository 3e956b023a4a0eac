/**
 * The ledger's alert metrics, computed from the nodes `/api/v1/ingest/nodes` returns (one number per question:
 * the alert, the API and the Ingest page read the same rows the same way).
 *
 * - `ingest_silence_seconds`: seconds since the node's last message, at `atMs` (a node that never sent one: since
 *   the range's start is not knowable, so it is left out). An idle Envoy with an open stream is `live` and still
 *   silent: a rule "silent for 3 minutes" pages for a gateway whose logger broke as much as for one that died.
 * - `ingest_drop_rate`: entries dropped or dead-lettered (every reason) over entries received, in the range
 *   (0 when nothing was received): per node, and for the whole fleet (`ingestDropRate(nodes)`).
 */
import type { LedgerNode } from './read.js';

export function ingestSilenceSeconds(node: Pick<LedgerNode, 'last_seen'>, atMs: number): number | undefined {
  if (!node.last_seen) return undefined;
  return Math.max(0, (atMs - Date.parse(node.last_seen)) / 1000);
}

const droppedOf = (n: Pick<LedgerNode, 'entries_dropped'>) =>
  Object.values(n.entries_dropped).reduce((a, b) => a + b, 0);

/** Dropped over received for one node or a set of them (the whole fleet). */
export function ingestDropRate(
  nodes:
    | Pick<LedgerNode, 'entries_dropped' | 'entries_received'>
    | readonly Pick<LedgerNode, 'entries_dropped' | 'entries_received'>[],
): number {
  const list = Array.isArray(nodes) ? nodes : [nodes];
  const received = list.reduce((a, n) => a + n.entries_received, 0);
  if (received <= 0) return 0;
  return list.reduce((a, n) => a + droppedOf(n), 0) / received;
}

/** One sample per node and metric, labelled like the ledger's Prometheus series (what an alert rule evaluates). */
export interface IngestSample {
  metric: 'ingest_silence_seconds' | 'ingest_drop_rate';
  labels: { node_id: string; node_cluster: string; log_name: string };
  value: number;
}

export function ingestSamples(nodes: readonly LedgerNode[], atMs: number): IngestSample[] {
  const out: IngestSample[] = [];
  for (const n of nodes) {
    const labels = { node_id: n.node_id, node_cluster: n.node_cluster, log_name: n.log_name };
    const silence = ingestSilenceSeconds(n, atMs);
    if (silence !== undefined) out.push({ metric: 'ingest_silence_seconds', labels, value: silence });
    out.push({ metric: 'ingest_drop_rate', labels, value: ingestDropRate(n) });
  }
  return out;
}
