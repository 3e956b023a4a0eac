import type { Server as HttpServer } from 'node:http';
import { authenticate, hasScope, type Principal } from '@gatescope/auth';
import type { ClickHouse } from '@gatescope/clickhouse';
import type { Config, TokenScope } from '@gatescope/config';
import { checkHostAndOrigin, hostPolicyFor, NON_DOCUMENT_HEADERS } from '@gatescope/http';
import {
  filterKey,
  HealthMemory,
  type HealthThresholds,
  liveQueryFilters,
  withRestriction,
  LiveFilterError,
  normaliseFilters,
  PointSeries,
  shapePoint,
  shapeWindow,
  TailCursor,
  TailLimiter,
  tailRowKey,
  type LiveFilters,
  type LiveStats,
  type PointRow,
  type WindowRow,
} from '@gatescope/live-stats';
import { withSpan } from '@gatescope/telemetry';
import { Registry } from 'prom-client';
import { liveTailQuery, liveTailRow, livePointsQuery, liveWindowQuery, QueryReader } from '@gatescope/query';
import { liveFilterMatch, type LiveWindow } from '@gatescope/live-window';
import { Server, type Namespace, type Socket } from 'socket.io';
import { createLiveMetrics } from './metrics.js';

export interface LiveLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  debug?(obj: object, msg?: string): void;
}

export interface LiveDeps {
  /** The HTTP server to share (the API's `app.server` in the all-in-one); socket.io answers under `/socket.io/`. */
  httpServer: HttpServer;
  config: Pick<Config, 'live' | 'health' | 'auth' | 'http' | 'host' | 'alsPort' | 'query'>;
  clickhouse: ClickHouse;
  logger?: LiveLogger;
  /** The ALS port Envoy should use, told to the UI for its empty state; a function when known only after bind. */
  alsPort?: number | (() => number);
  /** Seconds of per-second history in the first `stats` a socket gets (chart width). Default 900 (15 min). */
  historySeconds?: number;
  /** Most tail rows a second sent to one socket; the rest becomes an "N skipped" marker. Default 50. */
  tailRowsPerSecond?: number;
  /**
   * Most distinct filter sets computed at once (stats and tail each), which bounds the ClickHouse work per tick
   * whatever clients ask for. Default 100.
   */
  maxFilterSets?: number;
  /** Where its metrics go (`gatescope_live_*`): the process's registry, shared in the all-in-one. */
  registry?: Registry;
  /**
   * The collector's live window, when the collector runs in this process (the all-in-one): the window totals and the
   * last seconds of the chart come from it, within a tick of an entry's arrival whatever the ClickHouse batch size;
   * ClickHouse still answers the chart's history and any range the window did not see.
   */
  liveWindow?: LiveWindow;
  /**
   * The collector's last seconds of decoded rows, when it runs in this process (the all-in-one): the tail reads the
   * rows that arrived since its last poll from them, within a tick of their arrival, instead of reading ClickHouse.
   */
  recentRows?: RecentRowsSource;
}

/** The part of @gatescope/als' RecentRows the tail reads. */
export interface RecentRowsSource {
  readonly cursor: number;
  /** The rows after `cursor` that pass every clause (a value of one of its String columns among its values). */
  read(
    cursor: number,
    match: readonly { columns: readonly string[]; values: readonly string[] }[],
    limit: number,
  ): { rows: Record<string, unknown>[]; cursor: number };
}

export interface LiveServer {
  readonly io: Server;
  readonly namespace: Namespace;
  /** Counters for tests and /metrics: how much work the ticks did. */
  readonly counters: {
    statsComputations: number;
    statsComputeMs: number;
    tailPolls: number;
    queryErrors: number;
  };
  close(): Promise<void>;
}

/** How far back each tick re-reads per-second points: rows arrive late (batched inserts, logged at completion). */
const POINTS_REFRESH_SECONDS = 15;
/**
 * Re-read the whole chart history this seldom (it scans 15 minutes of rows), so every server converges on what
 * ClickHouse holds even for rows that arrived later than the re-read seconds.
 */
const POINTS_FULL_REFRESH_MS = 10 * 60_000;
/** How far back each tail poll looks for rows stored since the last poll. */
const TAIL_LOOKBACK_MS = 15_000;
const TAIL_POLL_LIMIT = 2_000;

const noop = () => {};
const silent: LiveLogger = { info: noop, warn: noop, error: noop };

interface StatsGroup {
  key: string;
  filters: LiveFilters;
  room: string;
  series: PointSeries;
  /** Each route's last health, so the judgement has hysteresis (packages/live-stats health.ts). */
  health: HealthMemory;
  lastFullAt: number;
  busy: boolean;
  /** Sockets that joined since the last tick: they get the whole history, then join the room. */
  pending: Set<Socket>;
  last?: { full: LiveStats; at: number };
}

interface TailGroup {
  key: string;
  filters: LiveFilters;
  sockets: Set<Socket>;
  cursor: TailCursor;
  primed: boolean;
  busy: boolean;
  /** Rows older than this (µs) are ignored: a poll that hit its limit could not see them all. */
  floorUs: number;
  /** With the collector's recent rows: the rows after this one are new. */
  recentCursor: number;
  /** Settles once the first poll has marked what is history: the `tail` request is answered after it. */
  ready: Promise<void>;
}

interface SocketState {
  statsKey?: string;
  tailKey?: string;
  limiter?: TailLimiter;
}

/**
 * The scope each client event needs, checked on every event before its handler runs (the socket itself needs
 * `read` to connect). An event without a row is refused, so a handler added here without one is unreachable.
 */
export const LIVE_EVENT_SCOPES: Readonly<Record<string, TokenScope>> = Object.freeze({
  subscribe: 'read',
  unsubscribe: 'read',
  tail: 'read',
  'tail:stop': 'read',
});

type Ack = (
  reply:
    { ok: true; filters: LiveFilters; key: string } | { ok: false; error: { code: string; message: string } },
) => void;

/**
 * The live server: socket.io namespace `/live` on an existing HTTP server.
 * - `subscribe` (filters) -> `stats` every tick. One computation per tick per distinct filter set, whatever the
 *   number of sockets (sockets with the same filters share a room and one payload).
 * - `tail` (filters) -> `tail` batches of rows as they are stored, at most `tailRowsPerSecond` per socket with an
 *   "N skipped" count; `tail:stop` ends it.
 * State lives in ClickHouse only, so several live servers behind a load balancer push the same numbers.
 */
export function attachLive(deps: LiveDeps): LiveServer {
  const { config, clickhouse } = deps;
  const database = clickhouse.database;
  const log = deps.logger ?? silent;
  const windowS = config.live.windowSeconds;
  const tickMs = config.live.tickMs;
  const historyS = deps.historySeconds ?? 900;
  const tailRate = deps.tailRowsPerSecond ?? 50;
  const maxFilterSets = deps.maxFilterSets ?? 100;
  const tooMany = (what: string) => ({
    code: 'ERR_LIVE_TOO_MANY_VIEWS',
    message: `This live server already computes ${maxFilterSets} distinct ${what} views; reuse existing filters or ask again later`,
  });
  const thresholds: HealthThresholds = { ...config.health };
  const counters = { statsComputations: 0, statsComputeMs: 0, tailPolls: 0, queryErrors: 0 };
  const metrics = createLiveMetrics(deps.registry ?? new Registry(), () => nsp);
  const alsPort = () =>
    typeof deps.alsPort === 'function' ? deps.alsPort() : (deps.alsPort ?? config.alsPort);

  // The same Host (tokenless mode) and Origin rules as the HTTP API, on every handshake, polling or WebSocket.
  const hostPolicy = hostPolicyFor(config);
  const io = new Server(deps.httpServer, {
    serveClient: false,
    cors: { origin: false },
    allowRequest: (req, callback) => {
      const verdict = checkHostAndOrigin(hostPolicy, req.headers);
      if (verdict.ok) return callback(null, true);
      log.warn(
        { code: verdict.code, host: req.headers.host, origin: req.headers.origin },
        'live handshake refused',
      );
      callback(`${verdict.code}: ${verdict.message}`, false);
    },
  });
  // Polling responses and the WebSocket handshake are written by engine.io, not fastify: same headers.
  const securityHeaders = (headers: Record<string, string>) => Object.assign(headers, NON_DOCUMENT_HEADERS);
  io.engine.on('initial_headers', securityHeaders);
  io.engine.on('headers', securityHeaders);
  const nsp = io.of('/live');
  const statsGroups = new Map<string, StatsGroup>();
  const tailGroups = new Map<string, TailGroup>();
  const state = new WeakMap<Socket, SocketState>();
  const inflight = new Set<Promise<unknown>>();
  let closed = false;

  nsp.use((socket, next) => {
    const token = (socket.handshake.auth as { token?: unknown } | undefined)?.token;
    const outcome = authenticate(config.auth, typeof token === 'string' ? token : undefined, 'read');
    if (outcome.ok) {
      socket.data.auth = {
        principal: outcome.principal,
        scopes: outcome.scopes,
        restriction: outcome.restriction,
      } satisfies Principal;
      return next();
    }
    const err = new Error(outcome.message) as Error & { data?: unknown };
    err.data = { code: outcome.code, status: outcome.status };
    log.warn({ code: outcome.code, address: socket.handshake.address }, 'live socket refused');
    next(err);
  });

  nsp.on('connection', (socket) => {
    state.set(socket, {});
    socket.use(([event, ...args], next) => {
      const principal = socket.data.auth as Principal;
      const needed = Object.hasOwn(LIVE_EVENT_SCOPES, event) ? LIVE_EVENT_SCOPES[event] : undefined;
      const error =
        needed === undefined
          ? {
              code: 'ERR_LIVE_UNKNOWN_EVENT',
              message: `Unknown event "${String(event).slice(0, 64)}": the live socket takes ${Object.keys(LIVE_EVENT_SCOPES).join(', ')}`,
            }
          : hasScope(principal.scopes, needed)
            ? undefined
            : {
                code: 'ERR_AUTH_FORBIDDEN',
                message: `Token "${principal.principal}" lacks the "${needed}" scope needed for "${event}"`,
              };
      if (!error) return next();
      log.warn({ code: error.code, principal: principal.principal }, 'live event refused');
      const ack = args[args.length - 1];
      if (typeof ack === 'function') (ack as Ack)({ ok: false, error });
      else socket.emit('live_error', error);
    });
    socket.emit('hello', {
      window_s: windowS,
      tick_ms: tickMs,
      history_s: historyS,
      tail_rows_per_second: tailRate,
      health: thresholds,
      als: { host: config.host, port: alsPort() },
      database: clickhouse.database,
      principal: (socket.data.auth as Principal).principal,
    });

    socket.on('subscribe', (raw: unknown, ack?: Ack) => {
      const admitted = admit(socket, raw, statsGroups, 'stats', ack);
      if (!admitted) return;
      const { filters, key } = admitted;
      leaveStats(socket);
      let group = statsGroups.get(key);
      if (!group) {
        group = {
          key,
          filters,
          room: `stats:${key}`,
          series: new PointSeries(historyS),
          health: new HealthMemory(thresholds),
          lastFullAt: 0,
          busy: false,
          pending: new Set(),
        };
        statsGroups.set(key, group);
      }
      state.get(socket)!.statsKey = key;
      // A fresh tick result is handed over at once; otherwise the next tick sends the whole history.
      if (group.last && Date.now() - group.last.at < tickMs) {
        socket.emit('stats', group.last.full);
        void socket.join(group.room);
      } else {
        group.pending.add(socket);
      }
      if (typeof ack === 'function') ack({ ok: true, filters, key });
    });

    socket.on('unsubscribe', (ack?: () => void) => {
      leaveStats(socket);
      if (typeof ack === 'function') ack();
    });

    socket.on('tail', (raw: unknown, ack?: Ack) => {
      const admitted = admit(socket, raw, tailGroups, 'tail', ack);
      if (!admitted) return;
      const { filters, key } = admitted;
      leaveTail(socket);
      let group = tailGroups.get(key);
      if (!group) {
        group = {
          key,
          filters,
          sockets: new Set(),
          cursor: new TailCursor(),
          primed: false,
          busy: false,
          floorUs: 0,
          recentCursor: 0,
          ready: Promise.resolve(),
        };
        tailGroups.set(key, group);
        // The first poll marks what is already there as history; answering after it means that every row
        // stored once the client has its answer reaches the client, however late the next tick comes.
        const created = group;
        created.ready = run(created, () => pollTail(created), 'tail', key);
      }
      group.sockets.add(socket);
      const s = state.get(socket)!;
      s.tailKey = key;
      s.limiter = new TailLimiter(tailRate, Date.now());
      void group.ready.then(() => {
        if (typeof ack === 'function') ack({ ok: true, filters, key });
      });
    });

    socket.on('tail:stop', (ack?: () => void) => {
      leaveTail(socket);
      if (typeof ack === 'function') ack();
    });

    socket.on('disconnect', () => {
      leaveStats(socket);
      leaveTail(socket);
    });
  });

  /**
   * Parse a subscribe/tail request's filters and keep the bound on distinct filter sets per server.
   * Answers the ack itself on refusal; returns undefined then.
   */
  function admit(
    socket: Socket,
    raw: unknown,
    groups: Map<string, unknown>,
    kind: 'stats' | 'tail',
    ack: Ack | undefined,
  ): { filters: LiveFilters; key: string } | undefined {
    let filters: LiveFilters;
    try {
      // The token's restriction joins the filters (and so the key): groups never mix restrictions.
      filters = withRestriction(normaliseFilters(raw), (socket.data.auth as Principal).restriction);
    } catch (err) {
      reply(ack, err);
      return undefined;
    }
    const key = filterKey(filters);
    if (!groups.has(key) && groups.size >= maxFilterSets) {
      if (typeof ack === 'function') ack({ ok: false, error: tooMany(kind) });
      return undefined;
    }
    return { filters, key };
  }

  function reply(ack: Ack | undefined, err: unknown): void {
    const error =
      err instanceof LiveFilterError
        ? { code: err.code, message: err.message }
        : { code: 'ERR_LIVE_INTERNAL', message: (err as Error).message };
    if (typeof ack === 'function') ack({ ok: false, error });
  }

  function leaveStats(socket: Socket): void {
    const s = state.get(socket);
    if (!s?.statsKey) return;
    const group = statsGroups.get(s.statsKey);
    s.statsKey = undefined;
    if (!group) return;
    group.pending.delete(socket);
    void socket.leave(group.room);
    if (group.pending.size === 0 && (nsp.adapter.rooms.get(group.room)?.size ?? 0) === 0)
      statsGroups.delete(group.key);
  }

  function leaveTail(socket: Socket): void {
    const s = state.get(socket);
    if (!s?.tailKey) return;
    const group = tailGroups.get(s.tailKey);
    s.tailKey = undefined;
    s.limiter = undefined;
    if (!group) return;
    group.sockets.delete(socket);
    if (group.sockets.size === 0) tailGroups.delete(group.key);
  }

  /** Every tick read: the API's reader (reader role, configured limits, framed answer). */
  const reader = new QueryReader({ clickhouse, limits: config.query.limits });
  const query = async <T>(q: Parameters<QueryReader['rows']>[0]) => ({ data: await reader.rows<T>(q) });

  async function computeStats(group: StatsGroup): Promise<void> {
    const now = Date.now();
    const end = Math.floor(now / 1000) * 1000;
    const windowFrom = now - windowS * 1000;
    const full = group.series.size === 0 || now - group.lastFullAt >= POINTS_FULL_REFRESH_MS;
    const pointsFrom = full ? end - historyS * 1000 : end - POINTS_REFRESH_SECONDS * 1000;
    counters.statsComputations++;
    metrics.statsComputations.inc();
    const t0 = performance.now();
    const lw = deps.liveWindow;
    const fromWindow = lw !== undefined && lw.covers(windowFrom);
    // With the live window, ClickHouse is read only for the chart's history, and only when it is due.
    const pointsFromWindow = lw !== undefined && !full && lw.covers(pointsFrom);
    const [win, pts] = await Promise.all([
      fromWindow
        ? { data: lw.window(group.filters, windowFrom, now) }
        : query<WindowRow>(
            liveWindowQuery({
              database,
              filters: liveQueryFilters(group.filters),
              fromMs: windowFrom,
              toMs: now,
            }),
          ),
      pointsFromWindow
        ? { data: lw.points(group.filters, pointsFrom, end) }
        : query<PointRow>(
            livePointsQuery({
              database,
              filters: liveQueryFilters(group.filters),
              fromMs: pointsFrom,
              toMs: end,
            }),
          ),
    ]);
    counters.statsComputeMs += performance.now() - t0;
    metrics.statsDuration.observe((performance.now() - t0) / 1000);
    if (full) group.lastFullAt = now;
    group.series.apply(pts.data.map(shapePoint), pointsFrom, end);
    // The seconds the window saw replace what ClickHouse had stored of them so far (its batches lag).
    if (lw && !pointsFromWindow) {
      const seenFrom = Math.max(pointsFrom, lw.coversFromMs, now - 60_000);
      if (seenFrom < end)
        group.series.apply(lw.points(group.filters, seenFrom, end).map(shapePoint), seenFrom, end);
    }
    const { totals, routes } = shapeWindow({
      rows: win.data,
      windowS,
      fromMs: windowFrom,
      thresholds,
      memory: group.health,
    });
    const base = { ts: now, window_s: windowS, history_s: historyS, totals, routes };
    const fullPayload: LiveStats = {
      ...base,
      points: group.series.list(end - historyS * 1000, end),
      points_full: true,
    };
    const delta: LiveStats = {
      ...base,
      points: group.series.list(end - POINTS_REFRESH_SECONDS * 1000, end),
      points_full: false,
    };
    group.last = { full: fullPayload, at: now };
    if (closed) return;
    nsp.to(group.room).emit('stats', delta);
    for (const socket of group.pending) {
      socket.emit('stats', fullPayload);
      void socket.join(group.room);
    }
    group.pending.clear();
  }

  async function pollTail(group: TailGroup): Promise<void> {
    const now = Date.now();
    counters.tailPolls++;
    metrics.tailPolls.inc();
    const recent = deps.recentRows;
    if (recent) {
      // What arrived before the tail started is history (the Requests page), not tail.
      if (!group.primed) {
        group.recentCursor = recent.cursor;
        group.primed = true;
        return;
      }
      const read = recent.read(group.recentCursor, liveFilterMatch(group.filters), TAIL_POLL_LIMIT);
      group.recentCursor = read.cursor;
      const rows = read.rows.map(liveTailRow).sort((a, b) => a.start_time_us - b.start_time_us);
      emitTail(group, rows);
      return;
    }
    const { data } = await query<Record<string, unknown> & { start_time_us: number }>(
      liveTailQuery({
        database,
        filters: liveQueryFilters(group.filters),
        fromMs: now - TAIL_LOOKBACK_MS,
        limit: TAIL_POLL_LIMIT,
      }),
    );
    const rows = data.filter((r) => Number(r.start_time_us) >= group.floorUs);
    if (data.length >= TAIL_POLL_LIMIT)
      group.floorUs = Math.max(group.floorUs, Number(data[data.length - 1].start_time_us));
    const fresh = group.cursor.fresh(rows, tailRowKey);
    group.cursor.forgetBefore((now - TAIL_LOOKBACK_MS) * 1000 - 1_000_000);
    if (!group.primed) {
      // What was stored before the tail started is history (the Requests page), not tail.
      group.primed = true;
      return;
    }
    emitTail(group, fresh);
  }

  function emitTail(group: TailGroup, fresh: Record<string, unknown>[]): void {
    if (closed) return;
    for (const socket of group.sockets) {
      const limiter = state.get(socket)?.limiter;
      if (!limiter) continue;
      const out = limiter.take(fresh, Date.now());
      if (out.rows.length > 0 || out.skipped > 0)
        socket.emit('tail', { rows: out.rows, skipped: out.skipped });
    }
  }

  /** Runs one tick's work for a group unless its previous one is still running; settles when it is done. */
  function run(
    busyOwner: { busy: boolean },
    work: () => Promise<void>,
    what: string,
    key: string,
  ): Promise<void> {
    if (busyOwner.busy) return Promise.resolve(); // the previous tick is still running: skip rather than pile up
    busyOwner.busy = true;
    // One span per tick's work for a filter set: its ClickHouse reads are the children.
    const p = withSpan('live.tick', { attributes: { 'gatescope.live.kind': what } }, work)
      .catch((err: unknown) => {
        counters.queryErrors++;
        metrics.queryErrors.inc();
        log.warn({ err, key }, `live ${what} query failed`);
        if (!closed && what === 'stats')
          nsp
            .to(`stats:${key}`)
            .emit('live_error', { code: 'ERR_LIVE_QUERY', message: (err as Error).message });
      })
      .finally(() => {
        busyOwner.busy = false;
        inflight.delete(p);
      });
    inflight.add(p);
    return p;
  }

  function tick(): void {
    for (const group of statsGroups.values()) void run(group, () => computeStats(group), 'stats', group.key);
    for (const group of tailGroups.values()) void run(group, () => pollTail(group), 'tail', group.key);
  }

  const timer = setInterval(tick, tickMs);
  timer.unref();

  return {
    io,
    namespace: nsp,
    counters,
    async close() {
      if (closed) return;
      closed = true;
      clearInterval(timer);
      nsp.disconnectSockets(true);
      await Promise.allSettled([...inflight]);
      // Close socket.io's engine only: the HTTP server belongs to the caller (the API closes it).
      io.engine.close();
      for (const n of [nsp, io.of('/')]) n.removeAllListeners();
    },
  };
}
