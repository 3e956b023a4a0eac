import { io, type Socket } from 'socket.io-client';
import type { LiveFilters, LiveStats } from '@gatescope/live-stats';
import { token } from './api.js';
import { mergePoints } from './points.js';

export type { LiveStats, LiveFilters };
export interface Hello {
  window_s: number;
  tick_ms: number;
  history_s: number;
  tail_rows_per_second: number;
  health: { degradedErrorRate: number; failingErrorRate: number };
  als: { host: string; port: number };
  /** The ClickHouse database SQL users query (`<database>.http_requests`). */
  database: string;
  principal: string;
}

let socket: Socket | undefined;
let hello: Hello | undefined;
const helloWaiters: ((h: Hello) => void)[] = [];

/** The one socket to `/live` for the page; reconnects by itself. */
export function live(): Socket {
  if (socket) return socket;
  socket = io('/live', { auth: (cb) => cb({ token: token() }), transports: ['websocket', 'polling'] });
  socket.on('hello', (h: Hello) => {
    hello = h;
    helloWaiters.splice(0).forEach((w) => w(h));
  });
  return socket;
}

export function onHello(cb: (h: Hello) => void): void {
  if (hello) cb(hello);
  else helloWaiters.push(cb);
}

/**
 * Subscribe to `stats` for filters; merges the per-second delta points into a full history so callers always
 * get the whole chart. Returns the unsubscribe function.
 */
export interface LiveError {
  code: string;
  message: string;
}
export type LiveAck = { ok: true } | { ok: false; error: LiveError };

export function subscribeStats(
  filters: LiveFilters,
  cb: (s: LiveStats) => void,
  onError?: (e: LiveError) => void,
): () => void {
  const s = live();
  let points: LiveStats['points'] = [];
  const onStats = (stats: LiveStats) => {
    points = mergePoints(points, stats);
    cb({ ...stats, points, points_full: true });
  };
  const subscribe = () =>
    s.emit('subscribe', filters, (reply: LiveAck) => {
      if (!reply.ok) onError?.(reply.error);
    });
  s.on('stats', onStats);
  s.on('connect', subscribe);
  if (s.connected) subscribe();
  return () => {
    s.off('stats', onStats);
    s.off('connect', subscribe);
    s.emit('unsubscribe');
  };
}
