/**
 * The routing map's graph: gateway -> route -> upstream cluster, from `GET /api/v1/flows`. Pure (no DOM): builds
 * the nodes and links d3-sankey lays out, with each route's split in % on its links to clusters.
 */
export interface FlowRow {
  gateway: string;
  route: string;
  /** '' on the gateway -> route level row. */
  upstream_cluster: string;
  requests: number;
  rps: number;
  error_rate: number;
  p99_ms: number | null;
  health: string;
}
export interface Flows {
  /** gateway -> route totals (one per pair). */
  routes: FlowRow[];
  /** gateway -> route -> cluster (one per triple; cluster '' = no upstream). */
  clusters: FlowRow[];
}

export type NodeKind = 'gateway' | 'route' | 'cluster';
export interface FlowNode {
  id: string;
  kind: NodeKind;
  name: string;
}
export interface FlowLink {
  source: string;
  target: string;
  /** Width: requests per second. */
  value: number;
  requests: number;
  rps: number;
  error_rate: number;
  p99_ms: number | null;
  health: string;
  /** route -> cluster links: the share of the route's requests (0..1). */
  share?: number;
  route: string;
  gateway: string;
  cluster?: string;
}

export const NO_UPSTREAM_NODE = '(no upstream)';

export function flowGraph(f: Flows, minShare = 0): { nodes: FlowNode[]; links: FlowLink[] } {
  const nodes = new Map<string, FlowNode>();
  const node = (kind: NodeKind, name: string, scope = ''): string => {
    const id = `${kind}:${scope}${name}`;
    if (!nodes.has(id)) nodes.set(id, { id, kind, name });
    return id;
  };
  const total = f.routes.reduce((s, r) => s + r.requests, 0);
  const links: FlowLink[] = [];
  const routeTotals = new Map<string, number>();
  for (const r of f.routes) {
    if (total && r.requests / total < minShare) continue;
    const key = `${r.gateway}\u0000${r.route}`;
    routeTotals.set(key, r.requests);
    links.push({
      source: node('gateway', r.gateway),
      target: node('route', r.route || '(no route)'),
      value: r.rps,
      requests: r.requests,
      rps: r.rps,
      error_rate: r.error_rate,
      p99_ms: r.p99_ms,
      health: r.health,
      route: r.route,
      gateway: r.gateway,
    });
  }
  for (const c of f.clusters) {
    const key = `${c.gateway}\u0000${c.route}`;
    const routeRequests = routeTotals.get(key);
    if (routeRequests === undefined) continue;
    links.push({
      source: node('route', c.route || '(no route)'),
      target: node('cluster', c.upstream_cluster || NO_UPSTREAM_NODE),
      value: c.rps,
      requests: c.requests,
      rps: c.rps,
      error_rate: c.error_rate,
      p99_ms: c.p99_ms,
      health: c.health,
      share: routeRequests ? c.requests / routeRequests : 0,
      route: c.route,
      gateway: c.gateway,
      cluster: c.upstream_cluster,
    });
  }
  return { nodes: [...nodes.values()], links };
}

/** Height that gives each node of the busiest column room for its label. */
export function mapHeight(nodes: readonly FlowNode[], perNode = 34, min = 320): number {
  const counts = { gateway: 0, route: 0, cluster: 0 };
  for (const n of nodes) counts[n.kind]++;
  return Math.max(min, Math.max(counts.gateway, counts.route, counts.cluster) * perNode);
}
