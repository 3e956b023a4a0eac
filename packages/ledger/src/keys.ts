/** A gateway node as the ledger keys it: Envoy's node id and node cluster, and the access log's `log_name`. */
export interface NodeIdentity {
  nodeId: string;
  nodeCluster: string;
  logName: string;
}

/** The columns of the access-log tables that hold a row's node, in key order. */
export const NODE_COLUMNS = ['node_id', 'node_cluster', 'log_name'] as const;

/**
 * The key of a node: its three strings as a JSON array, so any string (a `:` or a NUL in an Istio id) keeps the
 * three apart. `nativeRowKeys(data, NODE_COLUMNS)` makes the same keys from stored rows.
 */
export function nodeKey(node: NodeIdentity): string {
  return JSON.stringify([node.nodeId, node.nodeCluster, node.logName]);
}

export function parseNodeKey(key: string): NodeIdentity {
  try {
    const v = JSON.parse(key) as unknown;
    if (Array.isArray(v) && v.length === 3 && v.every((s) => typeof s === 'string'))
      return { nodeId: v[0] as string, nodeCluster: v[1] as string, logName: v[2] as string };
  } catch {
    // below
  }
  // Not a node key (a tally of rows added without one): the decoder's identity for "no identifier".
  return { nodeId: 'unknown', nodeCluster: '', logName: '' };
}
