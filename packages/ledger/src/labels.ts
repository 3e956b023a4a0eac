/**
 * Bounded label cardinality for the ledger's Prometheus series: the first `maxNodes` nodes a collector sees get
 * series of their own, every later one is added into the series labelled `other` (node_id, node_cluster and
 * log_name all `other`), and `gatescope_ingest_nodes_folded` says how many were. A process keeps its choice until
 * it restarts (a series never changes meaning mid-life); the ledger table and the API are never capped.
 */
export const OTHER = 'other';

export class NodeLabelCap {
  private readonly own = new Set<string>();
  private readonly folded = new Set<string>();

  constructor(readonly maxNodes: number) {}

  /** Whether `key` has series of its own (deciding it on first sight). */
  owns(key: string): boolean {
    if (this.own.has(key)) return true;
    if (this.folded.has(key)) return false;
    if (this.own.size < this.maxNodes) {
      this.own.add(key);
      return true;
    }
    this.folded.add(key);
    return false;
  }

  get foldedCount(): number {
    return this.folded.size;
  }
}
