/**
 * The reading side of the delivery ledger: one SQL question over `ingest_ledger` and the shape every consumer
 * gets (the API's `/api/v1/ingest/nodes`, the alert metrics `ingest_silence_seconds` and `ingest_drop_rate`).
 *
 * Ranges: the ledger is kept per minute, so `from` counts from the start of its minute. Counters (`messages`,
 * `entries_*`, `messages_rejected`) are sums over the range; `entries_in_flight` is the number still on its way at
 * the range's end and `entries_in_flight_at_start` at its start, so for every range
 *
 *     entries_received = entries_stored + sum(entries_dropped) + entries_in_flight - entries_in_flight_at_start
 *
 * and for a range that starts before the node's first message (`entries_in_flight_at_start` = 0) the plain
 * `received = stored + dropped + in_flight`. `first_seen`, `last_seen`, `streams_open` and `status` look at all
 * time up to the range's end.
 */
import { ident } from '@gatescope/clickhouse';
import type { Restriction, TimeRange } from '@gatescope/query';
import { NO_FIRST_SEEN } from './book.js';

export type NodeStatus = 'live' | 'stale' | 'gone';

/** A node stale for this long is `gone`. */
export const GONE_AFTER_MS = 86_400_000;

export interface LedgerNode {
  node_id: string;
  node_cluster: string;
  log_name: string;
  messages: number;
  entries_received: number;
  entries_stored: number;
  entries_dropped: Record<string, number>;
  messages_rejected: Record<string, number>;
  entries_in_flight: number;
  entries_in_flight_at_start: number;
  streams_open: number;
  /** RFC 3339, null when no message was ever seen (only a stream). */
  first_seen: string | null;
  last_seen: string | null;
  status: NodeStatus;
}

export interface LedgerPoint {
  minute: string;
  messages: number;
  entries_received: number;
  entries_stored: number;
  entries_dropped: Record<string, number>;
  messages_rejected: Record<string, number>;
  entries_in_flight_change: number;
}

export interface LedgerQuery {
  query: string;
  params: Record<string, unknown>;
}

/** The ledger answers whole gateways: a token restricted to some authorities only may not read it. */
export function ledgerReadable(restriction: Restriction | undefined): boolean {
  return !restriction?.authorities;
}

function where(restriction: Restriction | undefined, nodeId?: string): { sql: string; params: object } {
  const parts = ['minute < fromUnixTimestamp64Milli({to_ms:Int64})'];
  const params: Record<string, unknown> = {};
  if (restriction?.gateways) {
    parts.push(
      '(node_id IN {restricted_gateway:Array(String)} OR node_cluster IN {restricted_gateway:Array(String)})',
    );
    params.restricted_gateway = restriction.gateways;
  }
  if (nodeId !== undefined) {
    parts.push('node_id = {node_id:String}');
    params.node_id = nodeId;
  }
  return { sql: parts.join(' AND '), params };
}

const ms = (t: number) => Math.floor(t);

/**
 * Every node (or the node `nodeId`) seen before the range's end. Per collector first, so that the streams of a
 * collector that stopped sending heartbeats (it died with streams open) are not counted as open.
 */
export function ledgerNodesQuery(
  database: string,
  range: TimeRange,
  opts: { restriction?: Restriction; nodeId?: string; staleAfterMs: number; limit?: number },
): LedgerQuery {
  const w = where(opts.restriction, opts.nodeId);
  const inRange = 'minute >= toStartOfMinute(fromUnixTimestamp64Milli({from_ms:Int64}))';
  return {
    query:
      `SELECT node_id, node_cluster, log_name,\n` +
      `  sum(messages) AS messages, sum(entries_received) AS entries_received, sum(entries_stored) AS entries_stored,\n` +
      `  sumMap(entries_dropped) AS entries_dropped, sumMap(messages_rejected) AS messages_rejected,\n` +
      `  sum(in_flight_end) AS entries_in_flight, sum(in_flight_start) AS entries_in_flight_at_start,\n` +
      `  sumIf(open, streams_seen >= fromUnixTimestamp64Milli({to_ms:Int64}) - toIntervalMillisecond({stale_ms:Int64})) AS streams_open,\n` +
      `  toUnixTimestamp64Milli(min(first)) AS first_seen_ms, toUnixTimestamp64Milli(max(last)) AS last_seen_ms\n` +
      `FROM (\n` +
      `  SELECT node_id, node_cluster, log_name, collector,\n` +
      `    sumIf(messages, ${inRange}) AS messages,\n` +
      `    sumIf(entries_received, ${inRange}) AS entries_received,\n` +
      `    sumIf(entries_stored, ${inRange}) AS entries_stored,\n` +
      `    sumMapIf(entries_dropped, ${inRange}) AS entries_dropped,\n` +
      `    sumMapIf(messages_rejected, ${inRange}) AS messages_rejected,\n` +
      `    sum(entries_in_flight) AS in_flight_end,\n` +
      `    sumIf(entries_in_flight, NOT (${inRange})) AS in_flight_start,\n` +
      `    toInt64(sum(streams_opened)) - toInt64(sum(streams_closed)) AS open,\n` +
      `    max(streams_seen) AS streams_seen, min(first_seen) AS first, max(last_seen) AS last\n` +
      `  FROM ${ident(database)}.ingest_ledger\n` +
      `  WHERE ${w.sql}\n` +
      `  GROUP BY node_id, node_cluster, log_name, collector\n` +
      `)\n` +
      `GROUP BY node_id, node_cluster, log_name\n` +
      `ORDER BY node_id, node_cluster, log_name\n` +
      `LIMIT {limit:UInt32}`,
    params: {
      ...w.params,
      from_ms: ms(range.from),
      to_ms: ms(range.to),
      stale_ms: ms(opts.staleAfterMs),
      limit: opts.limit ?? 10_000,
    },
  };
}

/** The per-minute series of node `nodeId` (each of its node clusters and log names) over the range. */
export function ledgerSeriesQuery(
  database: string,
  range: TimeRange,
  nodeId: string,
  restriction?: Restriction,
): LedgerQuery {
  const w = where(restriction, nodeId);
  return {
    query:
      `SELECT node_cluster, log_name, toUnixTimestamp(minute) * 1000 AS minute_ms,\n` +
      `  sum(messages) AS messages, sum(entries_received) AS entries_received, sum(entries_stored) AS entries_stored,\n` +
      `  sumMap(entries_dropped) AS entries_dropped, sumMap(messages_rejected) AS messages_rejected,\n` +
      `  sum(entries_in_flight) AS entries_in_flight_change\n` +
      `FROM ${ident(database)}.ingest_ledger\n` +
      `WHERE ${w.sql} AND minute >= toStartOfMinute(fromUnixTimestamp64Milli({from_ms:Int64}))\n` +
      `GROUP BY node_cluster, log_name, minute\n` +
      `ORDER BY node_cluster, log_name, minute\n` +
      `LIMIT 100000`,
    params: { ...w.params, from_ms: ms(range.from), to_ms: ms(range.to) },
  };
}

type Num = number | string;
export interface LedgerNodeRow {
  node_id: string;
  node_cluster: string;
  log_name: string;
  messages: Num;
  entries_received: Num;
  entries_stored: Num;
  entries_dropped: Record<string, Num>;
  messages_rejected: Record<string, Num>;
  entries_in_flight: Num;
  entries_in_flight_at_start: Num;
  streams_open: Num;
  first_seen_ms: Num;
  last_seen_ms: Num;
}

export interface LedgerSeriesRow {
  node_cluster: string;
  log_name: string;
  minute_ms: Num;
  messages: Num;
  entries_received: Num;
  entries_stored: Num;
  entries_dropped: Record<string, Num>;
  messages_rejected: Record<string, Num>;
  entries_in_flight_change: Num;
}

/** A map of counts without its zero entries (a reason whose dead letters were all replayed). */
function counts(m: Record<string, Num> | undefined): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(m ?? {})) if (Number(v) !== 0) out[k] = Number(v);
  return out;
}

const NO_FIRST_SEEN_MS = Date.parse(NO_FIRST_SEEN.replace(' ', 'T') + 'Z');

/**
 * `live`: a stream from it is open (an idle Envoy keeps its stream and sends nothing) or it sent a message within
 * `staleAfterMs`; `stale`: neither; `gone`: stale for a day.
 */
export function nodeStatus(
  node: { streams_open: number; last_seen_ms?: number; first_seen_ms?: number },
  atMs: number,
  staleAfterMs: number,
): NodeStatus {
  if (node.streams_open > 0) return 'live';
  const last = node.last_seen_ms;
  if (last !== undefined && atMs - last < staleAfterMs) return 'live';
  if (last !== undefined && atMs - last >= staleAfterMs + GONE_AFTER_MS) return 'gone';
  if (last === undefined) return 'stale';
  return 'stale';
}

export function shapeLedgerNodes(rows: LedgerNodeRow[], atMs: number, staleAfterMs: number): LedgerNode[] {
  return rows.map((r) => {
    const first = Number(r.first_seen_ms);
    const last = Number(r.last_seen_ms);
    const firstMs = first > 0 && first < NO_FIRST_SEEN_MS ? first : undefined;
    const lastMs = last > 0 ? last : undefined;
    const streamsOpen = Math.max(0, Number(r.streams_open));
    return {
      node_id: r.node_id,
      node_cluster: r.node_cluster,
      log_name: r.log_name,
      messages: Number(r.messages),
      entries_received: Number(r.entries_received),
      entries_stored: Number(r.entries_stored),
      entries_dropped: counts(r.entries_dropped),
      messages_rejected: counts(r.messages_rejected),
      entries_in_flight: Number(r.entries_in_flight),
      entries_in_flight_at_start: Number(r.entries_in_flight_at_start),
      streams_open: streamsOpen,
      first_seen: firstMs === undefined ? null : new Date(firstMs).toISOString(),
      last_seen: lastMs === undefined ? null : new Date(lastMs).toISOString(),
      status: nodeStatus({ streams_open: streamsOpen, last_seen_ms: lastMs }, atMs, staleAfterMs),
    };
  });
}

export function shapeLedgerSeries(
  rows: LedgerSeriesRow[],
): Map<string, LedgerPoint[]> /* key: JSON [node_cluster, log_name] */ {
  const out = new Map<string, LedgerPoint[]>();
  for (const r of rows) {
    const key = JSON.stringify([r.node_cluster, r.log_name]);
    let list = out.get(key);
    if (!list) out.set(key, (list = []));
    list.push({
      minute: new Date(Number(r.minute_ms)).toISOString(),
      messages: Number(r.messages),
      entries_received: Number(r.entries_received),
      entries_stored: Number(r.entries_stored),
      entries_dropped: counts(r.entries_dropped),
      messages_rejected: counts(r.messages_rejected),
      entries_in_flight_change: Number(r.entries_in_flight_change),
    });
  }
  return out;
}
