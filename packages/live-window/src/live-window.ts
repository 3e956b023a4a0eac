/**
 * The collector's live window: what the live `stats` need of the last minutes, computed from the decoded stream
 * itself instead of read back from ClickHouse after each insert, so an entry shows in `stats` within a tick of its
 * arrival whatever the ClickHouse batch size.
 *
 * - Decoder threads record every http row they write (LiveWindowRecorder: per second of start_time and per
 *   route × authority × upstream cluster × gateway, a request count, 5xx count, status classes and a latency
 *   sketch) and hand over partial windows every few hundred ms.
 * - LiveWindow merges partials (from threads, or from collector replicas: counts add, sketches merge exactly) and
 *   answers the live ticks' two questions in the same row shapes as their SQL (windowQuery, pointsQuery).
 * - It covers seconds from when it started (`coversFromMs`) back to `horizonS`; older seconds, and everything after
 *   a restart, come from ClickHouse, the source of truth for every range that is not live.
 */
import { DenseLatencySketch } from './dd-state.js';
import { QUANTILE_LEVELS, type LatencySketchData } from './latency-sketch.js';

/**
 * Bins kept free on either side when a cell's sketch grows (dense bins: adding a value or merging a sketch
 * allocates nothing once they span its keys): one route's latencies within one second span few keys.
 */
const CELL_SKETCH_MARGIN = 16;

/**
 * The live filters (the shape of @gatescope/live-stats' LiveWindowFilters; this package has no dependencies, so that the
 * decoder threads load nothing else).
 */
export interface LiveWindowFilters {
  route?: string;
  authority?: string;
  gateway?: string;
  upstream_cluster?: string;
  restriction?: { authorities?: readonly string[]; gateways?: readonly string[] };
}
/**
 * The stats columns of the API's and the live SQL's rows (@gatescope/query `statsColumns`): requests per status
 * class and `q`, the quantiles at QUANTILE_LEVELS. Bytes and the maximum are not kept (the live payloads do not
 * show them): 0 and null.
 */
export interface LiveStatsColumns {
  requests: number;
  requests_1xx: number;
  requests_2xx: number;
  requests_3xx: number;
  requests_4xx: number;
  requests_5xx: number;
  requests_none: number;
  bytes_sent: number;
  bytes_received: number;
  max_ms: null;
  q: (number | null)[];
}
/** A row of the live `liveWindowQuery` (@gatescope/query). */
export interface LiveWindowRow extends LiveStatsColumns {
  route: string;
  is_total: number;
  spark: [number, number][];
}
/** A row of the live `livePointsQuery` (@gatescope/query). */
export interface LivePointRow extends LiveStatsColumns {
  s: number;
}

/** One cell of a partial window: one second of one route × authority × cluster × gateway. */
export interface LiveWindowCell {
  s: number;
  route: string;
  authority: string;
  upstream_cluster: string;
  node_id: string;
  node_cluster: string;
  n: number;
  /** Requests answered 5xx (the live `errors`). */
  e: number;
  /** Status classes in this order: 1xx, 2xx, 3xx, 4xx, 5xx, none (response code 0). */
  c: number[];
  sketch: LatencySketchData;
}

export interface LiveWindowPartial {
  cells: LiveWindowCell[];
}

const statusIndex = (code: number): number =>
  code === 0 ? 5 : code < 200 ? 0 : code < 300 ? 1 : code < 400 ? 2 : code < 500 ? 3 : 4;

interface RecorderCell {
  cell: Omit<LiveWindowCell, 'sketch'>;
  sketch: DenseLatencySketch;
}

/** A level of the recorder's cells: by one key column, then the next. */
type Level<T> = Map<string, T>;

/**
 * The decoder thread's side: cheap per row (a few map lookups, a few adds, one sketch add). Cells are found through
 * one map per key column (route, authority, upstream cluster, gateway node and cluster) and then the second: the
 * decoder hands the same string objects row after row, whose hashes V8 keeps, so no key string is built per row.
 */
export class LiveWindowRecorder {
  private cells: Level<Level<Level<Level<Level<Map<number, RecorderCell>>>>>> = new Map();
  private list: RecorderCell[] = [];
  /** Seconds are keyed relative to this (small integers), set by the first row after a take. */
  private base = 0;

  get size(): number {
    return this.list.length;
  }

  record(
    startUs: number,
    durationMs: number,
    responseCode: number,
    route: string,
    authority: string,
    upstreamCluster: string,
    nodeId: string,
    nodeCluster: string,
  ): void {
    const s = Math.floor(startUs / 1_000_000);
    if (this.list.length === 0) this.base = s;
    const byAuthority = child(this.cells, route);
    const byCluster = child(byAuthority, authority);
    const byNode = child(byCluster, upstreamCluster);
    const byNodeCluster = child(byNode, nodeId);
    let bySecond = byNodeCluster.get(nodeCluster);
    if (!bySecond) byNodeCluster.set(nodeCluster, (bySecond = new Map()));
    let c = bySecond.get(s - this.base);
    if (!c) {
      c = {
        cell: {
          s,
          route,
          authority,
          upstream_cluster: upstreamCluster,
          node_id: nodeId,
          node_cluster: nodeCluster,
          n: 0,
          e: 0,
          c: [0, 0, 0, 0, 0, 0],
        },
        sketch: new DenseLatencySketch(undefined, { margin: CELL_SKETCH_MARGIN }),
      };
      bySecond.set(s - this.base, c);
      this.list.push(c);
    }
    c.cell.n++;
    if (responseCode >= 500) c.cell.e++;
    c.cell.c[statusIndex(responseCode)]++;
    c.sketch.add(durationMs);
  }

  /** Everything recorded since the last call, as plain data (structured-clone friendly); undefined when none. */
  take(): LiveWindowPartial | undefined {
    if (this.list.length === 0) return undefined;
    const cells = this.list.map((c) => ({ ...c.cell, sketch: c.sketch.toJSON() }));
    this.cells = new Map();
    this.list = [];
    return { cells };
  }
}

function child<T>(level: Level<Level<T>>, key: string): Level<T> {
  let next = level.get(key);
  if (!next) level.set(key, (next = new Map()));
  return next;
}

interface Cell {
  route: string;
  authority: string;
  upstream_cluster: string;
  node_id: string;
  node_cluster: string;
  n: number;
  e: number;
  c: number[];
  /** The cell's latency sketch: merging a partial's sketch into it adds into its bins, allocating nothing. */
  sketch: DenseLatencySketch;
}

/** What the live filters look at: a row's (or a cell's) route, authority, upstream cluster and gateway node. */
export interface LiveFilterKeys {
  route: string;
  authority: string;
  upstream_cluster: string;
  node_id: string;
  node_cluster: string;
}

/** Whether a row or cell passes the live filters (and the token's restriction): the one definition, stats and tail. */
export function matchesLiveFilters(cell: LiveFilterKeys, f: LiveWindowFilters): boolean {
  if (f.route !== undefined && cell.route !== f.route) return false;
  if (f.authority !== undefined && cell.authority !== f.authority) return false;
  if (f.upstream_cluster !== undefined && cell.upstream_cluster !== f.upstream_cluster) return false;
  if (f.gateway !== undefined && cell.node_id !== f.gateway && cell.node_cluster !== f.gateway) return false;
  const r = f.restriction;
  if (r?.authorities && !r.authorities.includes(cell.authority)) return false;
  if (r?.gateways && !r.gateways.includes(cell.node_id) && !r.gateways.includes(cell.node_cluster))
    return false;
  return true;
}

/** Columns of http_requests rows that carry the LiveFilterKeys. */
const KEY_COLUMNS: Record<keyof LiveFilterKeys, string> = {
  route: 'route_name',
  authority: 'authority',
  upstream_cluster: 'upstream_cluster',
  node_id: 'node_id',
  node_cluster: 'node_cluster',
};

/**
 * matchesLiveFilters as clauses over http_requests' String columns (every clause holds when one of its columns has
 * one of its values; no clause: every row), for reading rows where they lie as bytes (the tail's recent rows).
 */
export function liveFilterMatch(f: LiveWindowFilters): { columns: string[]; values: string[] }[] {
  const clause = (keys: (keyof LiveFilterKeys)[], values: readonly string[]) => ({
    columns: keys.map((k) => KEY_COLUMNS[k]),
    values: [...values],
  });
  const out: { columns: string[]; values: string[] }[] = [];
  if (f.route !== undefined) out.push(clause(['route'], [f.route]));
  if (f.authority !== undefined) out.push(clause(['authority'], [f.authority]));
  if (f.upstream_cluster !== undefined) out.push(clause(['upstream_cluster'], [f.upstream_cluster]));
  if (f.gateway !== undefined) out.push(clause(['node_id', 'node_cluster'], [f.gateway]));
  const r = f.restriction;
  if (r?.authorities) out.push(clause(['authority'], r.authorities));
  if (r?.gateways) out.push(clause(['node_id', 'node_cluster'], r.gateways));
  return out;
}

interface Totals {
  n: number;
  e: number;
  c: number[];
  sketch: DenseLatencySketch;
}
const emptyTotals = (): Totals => ({
  n: 0,
  e: 0,
  c: [0, 0, 0, 0, 0, 0],
  sketch: new DenseLatencySketch(undefined, { margin: 64 }),
});
function addTo(t: Totals, cell: Cell): void {
  t.n += cell.n;
  t.e += cell.e;
  for (let i = 0; i < 6; i++) t.c[i] += cell.c[i];
  t.sketch.mergeSketch(cell.sketch);
}
function statsColumns(t: Totals): LiveStatsColumns {
  return {
    requests: t.n,
    requests_1xx: t.c[0],
    requests_2xx: t.c[1],
    requests_3xx: t.c[2],
    requests_4xx: t.c[3],
    requests_5xx: t.c[4],
    requests_none: t.c[5],
    bytes_sent: 0,
    bytes_received: 0,
    max_ms: null,
    q: t.sketch.quantiles(QUANTILE_LEVELS),
  };
}

export interface LiveWindowOptions {
  /** Seconds kept (default 120: the live window of 60 s plus the seconds a chart re-reads, with margin). */
  horizonS?: number;
  now?: () => number;
}

/** The merged live window, read by the live server's ticks. */
export class LiveWindow {
  private readonly seconds = new Map<number, Map<string, Cell>>();
  private readonly horizonS: number;
  private readonly now: () => number;
  /** Epoch ms from which the window has seen every entry (it started then). */
  readonly coversFromMs: number;
  /** Rows whose start second was already beyond the horizon on arrival (only ClickHouse has them). */
  late = 0;

  constructor(options: LiveWindowOptions = {}) {
    this.horizonS = options.horizonS ?? 120;
    this.now = options.now ?? Date.now;
    // The second in progress at start is partly unseen: cover from the next one.
    this.coversFromMs = (Math.floor(this.now() / 1000) + 1) * 1000;
  }

  /** Whether [fromMs, now] is all inside what this window saw. */
  covers(fromMs: number): boolean {
    return fromMs >= this.coversFromMs && fromMs >= this.now() - this.horizonS * 1000;
  }

  merge(partial: LiveWindowPartial): void {
    const oldest = Math.floor(this.now() / 1000) - this.horizonS;
    for (const p of partial.cells) {
      if (p.s < oldest) {
        this.late += p.n;
        continue;
      }
      let second = this.seconds.get(p.s);
      if (!second) {
        second = new Map();
        this.seconds.set(p.s, second);
      }
      const key = `${p.route}\u0001${p.authority}\u0001${p.upstream_cluster}\u0001${p.node_id}\u0001${p.node_cluster}`;
      let cell = second.get(key);
      if (!cell) {
        cell = {
          route: p.route,
          authority: p.authority,
          upstream_cluster: p.upstream_cluster,
          node_id: p.node_id,
          node_cluster: p.node_cluster,
          n: 0,
          e: 0,
          c: [0, 0, 0, 0, 0, 0],
          sketch: new DenseLatencySketch(undefined, { margin: CELL_SKETCH_MARGIN }),
        };
        second.set(key, cell);
      }
      // Checks the relative accuracy first: a partial from a different build is refused before it counts.
      cell.sketch.mergeJSON(p.sketch);
      cell.n += p.n;
      cell.e += p.e;
      for (let i = 0; i < 6; i++) cell.c[i] += p.c[i];
    }
    for (const s of this.seconds.keys()) if (s < oldest) this.seconds.delete(s);
  }

  /** Cells of the seconds in [fromMs, toMs) matching `filters`. */
  private *cells(filters: LiveWindowFilters, fromMs: number, toMs: number): Generator<[number, Cell]> {
    const from = Math.ceil(fromMs / 1000);
    const to = Math.ceil(toMs / 1000);
    for (const [s, second] of this.seconds) {
      if (s < from || s >= to) continue;
      for (const cell of second.values()) if (matchesLiveFilters(cell, filters)) yield [s, cell];
    }
  }

  /** windowQuery's rows: the all-routes row first (`is_total`), then one per route, busiest first. */
  window(filters: LiveWindowFilters, fromMs: number, toMs: number, routeLimit = 500): LiveWindowRow[] {
    const total = emptyTotals();
    const routes = new Map<string, Totals & { spark: Map<number, number> }>();
    for (const [s, cell] of this.cells(filters, fromMs, toMs)) {
      addTo(total, cell);
      let r = routes.get(cell.route);
      if (!r) {
        r = { ...emptyTotals(), spark: new Map() };
        routes.set(cell.route, r);
      }
      addTo(r, cell);
      r.spark.set(s, (r.spark.get(s) ?? 0) + cell.n);
    }
    const row = (route: string, t: Totals, isTotal: boolean, spark: Map<number, number>): LiveWindowRow => ({
      route,
      is_total: isTotal ? 1 : 0,
      ...statsColumns(t),
      spark: [...spark].sort((a, b) => a[0] - b[0]),
    });
    const perRoute = [...routes]
      .sort((a, b) => b[1].n - a[1].n || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
      .slice(0, routeLimit)
      .map(([route, t]) => row(route, t, false, t.spark));
    return [row('', total, true, new Map()), ...perRoute];
  }

  /** pointsQuery's rows: one per second with requests, oldest first. */
  points(filters: LiveWindowFilters, fromMs: number, toMs: number): LivePointRow[] {
    const bySecond = new Map<number, Totals>();
    for (const [s, cell] of this.cells(filters, fromMs, toMs)) {
      let t = bySecond.get(s);
      if (!t) {
        t = emptyTotals();
        bySecond.set(s, t);
      }
      addTo(t, cell);
    }
    return [...bySecond]
      .sort((a, b) => a[0] - b[0])
      .map(([s, t]) => ({
        s,
        ...statsColumns(t),
      }));
  }
}
