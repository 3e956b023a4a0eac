/**
 * What the Ingest page reads: the delivery ledger (`/api/v1/ingest/nodes`, issue 14), typed and read
 * tolerantly (a missing field is an empty value, not a crash). The pure helpers (per-minute series filled over
 * the range, totals by reason) are unit-tested in logic.test.ts.
 */
import { firstArray, get, type Query } from '../api.js';

export type NodeStatus = 'live' | 'stale' | 'gone';

/** One gateway node (node id, node cluster, log name) and what became of what it sent. */
export interface IngestNode {
  node_id: string;
  node_cluster: string;
  log_name: string;
  messages: number;
  entries_received: number;
  entries_stored: number;
  /** reason -> entries (dead-lettered or lost). */
  entries_dropped: Record<string, number>;
  /** reason -> messages refused. */
  messages_rejected: Record<string, number>;
  entries_in_flight: number;
  streams_open: number;
  first_seen: string | null;
  last_seen: string | null;
  status: NodeStatus;
}

/** A minute of one node's ledger. */
export interface LedgerPoint {
  minute: number;
  entries_received: number;
  entries_stored: number;
  entries_dropped: number;
}

export interface IngestView {
  from: number;
  to: number;
  staleAfterS: number | null;
  nodes: IngestNode[];
}

type Raw = Record<string, unknown>;
const str = (v: unknown): string =>
  typeof v === 'string' ? v : v === undefined || v === null ? '' : String(v);
const count = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : Number(v) || 0);
const counts = (v: unknown): Record<string, number> =>
  v && typeof v === 'object' && !Array.isArray(v)
    ? Object.fromEntries(
        Object.entries(v as Raw)
          .map(([k, n]) => [k, count(n)] as const)
          .filter(([, n]) => n !== 0),
      )
    : {};
const time = (v: unknown): number =>
  typeof v === 'string' || typeof v === 'number' ? new Date(v).getTime() : NaN;

export function readNode(n: Raw): IngestNode {
  const status = str(n.status);
  return {
    node_id: str(n.node_id),
    node_cluster: str(n.node_cluster),
    log_name: str(n.log_name),
    messages: count(n.messages),
    entries_received: count(n.entries_received),
    entries_stored: count(n.entries_stored),
    entries_dropped: counts(n.entries_dropped),
    messages_rejected: counts(n.messages_rejected),
    entries_in_flight: count(n.entries_in_flight),
    streams_open: count(n.streams_open),
    first_seen: typeof n.first_seen === 'string' ? n.first_seen : null,
    last_seen: typeof n.last_seen === 'string' ? n.last_seen : null,
    status: status === 'live' || status === 'stale' || status === 'gone' ? status : 'stale',
  };
}

export function readPoint(p: Raw): LedgerPoint {
  const dropped = p.entries_dropped;
  return {
    minute: time(p.minute ?? p.ts ?? p.t),
    entries_received: count(p.entries_received),
    entries_stored: count(p.entries_stored),
    entries_dropped:
      dropped && typeof dropped === 'object'
        ? Object.values(dropped as Raw).reduce<number>((a, b) => a + count(b), 0)
        : count(dropped),
  };
}

/** The nodes of a range; nodes are ordered: stale and gone first (what needs a look), then by entries received. */
export async function loadNodes(range: Query): Promise<IngestView> {
  const body = await get<Raw>('/api/v1/ingest/nodes', range);
  const nodes = firstArray<Raw>(body, ['nodes']).map(readNode);
  const order: Record<NodeStatus, number> = { stale: 0, gone: 1, live: 2 };
  nodes.sort((a, b) => order[a.status] - order[b.status] || b.entries_received - a.entries_received);
  return {
    from: time(body.from),
    to: time(body.to),
    staleAfterS: typeof body.stale_after_s === 'number' ? body.stale_after_s : null,
    nodes,
  };
}

/**
 * One node's per-minute series (the sum over its node clusters and log names, the rows of `nodes[]`), keyed by
 * `node_cluster|log_name` so the table row of each combination gets its own.
 */
export async function loadNodeSeries(nodeId: string, range: Query): Promise<Map<string, LedgerPoint[]>> {
  const body = await get<Raw>(`/api/v1/ingest/nodes/${encodeURIComponent(nodeId)}`, range);
  const out = new Map<string, LedgerPoint[]>();
  for (const n of firstArray<Raw>(body, ['nodes']))
    out.set(nodeKey(readNode(n)), firstArray<Raw>(n.series, ['series', 'points']).map(readPoint));
  return out;
}

export const nodeKey = (n: Pick<IngestNode, 'node_id' | 'node_cluster' | 'log_name'>): string =>
  JSON.stringify([n.node_id, n.node_cluster, n.log_name]);

/**
 * Per-minute columns over `[from, to)`: every minute present, quiet minutes as 0 (the ledger writes rows for
 * minutes with traffic only), so a sparkline's x axis is time, not rows. At most `max` minutes (the newest).
 */
export function minuteColumns(
  points: readonly LedgerPoint[],
  from: number,
  to: number,
  max = 120,
): { received: number[]; stored: number[]; dropped: number[] } {
  const first = Math.max(Math.floor(from / 60_000), Math.ceil(to / 60_000) - max);
  const last = Math.ceil(to / 60_000) - 1;
  const n = Math.max(0, last - first + 1);
  const received = new Array<number>(n).fill(0);
  const stored = new Array<number>(n).fill(0);
  const dropped = new Array<number>(n).fill(0);
  for (const p of points) {
    const i = Math.floor(p.minute / 60_000) - first;
    if (!(i >= 0 && i < n)) continue;
    received[i] += p.entries_received;
    stored[i] += p.entries_stored;
    dropped[i] += p.entries_dropped;
  }
  return { received, stored, dropped };
}

/** Reason -> total over nodes (drops or rejections), largest first. */
export function byReason(maps: readonly Record<string, number>[]): [string, number][] {
  const acc = new Map<string, number>();
  for (const m of maps) for (const [k, v] of Object.entries(m)) acc.set(k, (acc.get(k) ?? 0) + v);
  return [...acc].filter(([, v]) => v !== 0).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
}

export const sum = (m: Record<string, number>): number => Object.values(m).reduce((a, b) => a + b, 0);

/** `start_time_out_of_range` -> `start time out of range` (the code stays in the tooltip). */
export const reasonText = (reason: string): string => reason.replace(/_/g, ' ');
