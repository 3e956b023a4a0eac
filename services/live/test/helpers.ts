import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClickHouse, migrate, type ClickHouse } from '@gatescope/clickhouse';
import type { Config } from '@gatescope/config';
import { io as connect, type Socket } from 'socket.io-client';
import { attachLive, type LiveDeps, type LiveServer } from '../src/index.js';

export type TestConfig = LiveDeps['config'];

export function testConfig(
  over: Partial<{
    tokens: Config['auth']['tokens'];
    tickMs: number;
    windowSeconds: number;
    allowedHosts: string[];
  }> = {},
): TestConfig {
  return {
    host: '127.0.0.1',
    alsPort: 8090,
    live: { windowSeconds: over.windowSeconds ?? 60, tickMs: over.tickMs ?? 200 },
    health: {
      degradedErrorRate: 0.001,
      failingErrorRate: 0.1,
      degraded4xxRate: 0.1,
      failing4xxRate: 0.2,
      minRequests: 20,
      hysteresis: 0.2,
    },
    auth: { tokens: over.tokens ?? [], allowUnauthenticated: false, rateLimitPerMinute: 600 },
    http: { allowedHosts: over.allowedHosts ?? [], metricsPublic: false },
    query: { limits: { maxExecutionTimeS: 30, maxMemoryBytes: 1024 ** 3, maxThreads: 2 } },
  };
}

export interface Harness {
  ch: ClickHouse;
  queries: string[];
  start(
    config: TestConfig,
    extra?: Partial<LiveDeps>,
  ): Promise<{ live: LiveServer; url: string; server: Server }>;
  close(): Promise<void>;
}

/** One embedded engine per test file (chdb: one per process), with every query the live server runs recorded. */
export async function harness(): Promise<Harness> {
  const dir = mkdtempSync(join(tmpdir(), 'gatescope-live-'));
  const ch = await createClickHouse({ database: 'gatescope', dataDir: dir });
  await migrate(ch, { retentionDays: 30, rollupRetentionDays: 400 });
  const queries: string[] = [];
  // The live server reads as the reader role.
  const query = ch.reader.query.bind(ch.reader);
  (ch.reader as { query: typeof query }).query = ((params: Parameters<typeof query>[0]) => {
    queries.push(params.query);
    return query(params);
  }) as typeof query;
  const running: { live: LiveServer; server: Server }[] = [];
  return {
    ch,
    queries,
    async start(config, extra) {
      const server = createServer();
      const live = attachLive({ httpServer: server, config, clickhouse: ch, ...extra });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      running.push({ live, server });
      return { live, server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/live` };
    },
    async close() {
      for (const r of running) {
        await r.live.close();
        await new Promise((res) => r.server.close(res));
      }
      await ch.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface RequestRow {
  start_time: Date;
  duration_ms: number;
  response_code: number;
  route_name: string;
  upstream_cluster?: string;
  authority?: string;
  node_id?: string;
  node_cluster?: string;
  path?: string;
  request_id?: string;
  response_flags?: string[];
}

const fmt = (d: Date) => d.toISOString().replace('T', ' ').replace('Z', '');

/** Insert rows the way the collector would (tests of the live server need no gRPC). */
export async function insertRequests(ch: ClickHouse, rows: RequestRow[]): Promise<void> {
  await ch.client.insert({
    table: `${ch.database}.http_requests`,
    format: 'JSONEachRow',
    values: rows.map((r, i) => ({
      start_time: fmt(r.start_time),
      duration_ms: r.duration_ms,
      response_code: r.response_code,
      route_name: r.route_name,
      upstream_cluster: r.upstream_cluster ?? 'outbound|80||frontend.default.svc.cluster.local',
      authority: r.authority ?? 'shop.example.com',
      node_id: r.node_id ?? 'router~10.0.0.1~istio-ingressgateway-1~istio-system.svc.cluster.local',
      node_cluster: r.node_cluster ?? 'istio-ingressgateway.istio-system',
      method: 'GET',
      path: r.path ?? `/${r.route_name}/${i}`,
      request_id: r.request_id ?? `req-${Date.now()}-${i}-${Math.random().toString(36).slice(2)}`,
      response_flags: r.response_flags ?? [],
      protocol: 'HTTP/1.1',
    })),
  });
}

export function client(
  url: string,
  token?: string,
  options: { transports?: ('websocket' | 'polling')[]; extraHeaders?: Record<string, string> } = {},
): Socket {
  return connect(url, {
    transports: options.transports ?? ['websocket'],
    auth: token ? { token } : {},
    reconnection: false,
    forceNew: true,
    extraHeaders: options.extraHeaders,
  });
}

export function once<T>(socket: Socket, event: string, timeoutMs = 10_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no "${event}" within ${timeoutMs} ms`)), timeoutMs);
    socket.once(event, (v: T) => {
      clearTimeout(t);
      resolve(v);
    });
  });
}

/** Wait for the first event whose payload satisfies `pred`. */
export function until<T>(
  socket: Socket,
  event: string,
  pred: (v: T) => boolean,
  timeoutMs = 15_000,
): Promise<T> {
  return new Promise((resolve, reject) => {
    const on = (v: T) => {
      if (pred(v)) {
        clearTimeout(t);
        socket.off(event, on);
        resolve(v);
      }
    };
    const t = setTimeout(() => {
      socket.off(event, on);
      reject(new Error(`no matching "${event}" within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.on(event, on);
  });
}

export function emitAck<T>(socket: Socket, event: string, arg: unknown): Promise<T> {
  return socket.timeout(10_000).emitWithAck(event, arg) as Promise<T>;
}
