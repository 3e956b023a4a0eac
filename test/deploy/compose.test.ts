import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { envoyProtoRoot } from '@gatescope/als';
import protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

// The reference topology's files, checked the way their own tools would read them: the compose file's wiring,
// Prometheus' config by promtool, Envoy's config as an envoy.config.bootstrap.v3.Bootstrap built from Envoy's
// own protos (every `@type` resolved and packed, any field Envoy would not know is a failure).

const repo = (p: string) => fileURLToPath(new URL(`../../${p}`, import.meta.url));
const COMPOSE = repo('docker-compose.yml');
const PROMETHEUS = repo('services/gatescope/deploy/prometheus.yml');
const ENVOY = repo('services/gatescope/deploy/envoy-demo.yaml');

interface Service {
  image?: string;
  build?: unknown;
  command?: string[];
  environment?: Record<string, string>;
  healthcheck?: { test?: string[]; disable?: boolean };
  depends_on?: Record<string, { condition: string }>;
  deploy?: { replicas?: number };
}
const compose = parse(readFileSync(COMPOSE, 'utf8'), { merge: true }) as {
  services: Record<string, Service>;
};
const services = compose.services;
/** The gatescope entry point a service runs (`collector`, `api`, …), from its command. */
const gatescopeMain = (s: Service) => /^services\/(\w+)\/dist\/main\.cjs$/.exec(s.command?.[1] ?? '')?.[1];
const httpPort = (s: Service) => Number(s.environment?.GATESCOPE_HTTP_PORT ?? 8080);

describe('docker-compose.yml', () => {
  it('is valid for docker-compose itself', () => {
    const r = spawnSync('docker-compose', ['-f', COMPOSE, 'config', '-q'], { encoding: 'utf8' });
    if (r.error) return; // CI runs `docker-compose config -q` itself; this machine may lack the binary.
    expect(r.stderr.trim()).toBe('');
    expect(r.status).toBe(0);
  });

  it('runs migrate once before anything that uses the schema, and health-checks every long-running service', () => {
    expect(services.migrate.command).toEqual(['node', 'services/gatescope/dist/main.cjs', 'migrate']);
    expect(services.migrate.depends_on).toEqual({ clickhouse: { condition: 'service_healthy' } });
    const users = Object.entries(services).filter(([name, s]) => gatescopeMain(s) && name !== 'migrate');
    expect(users.map(([n]) => n).sort()).toEqual(['alerts', 'api', 'collector', 'live']);
    for (const [name, s] of [...users, ['grafana', services.grafana] as const]) {
      expect(s.depends_on?.migrate, name).toEqual({ condition: 'service_completed_successfully' });
    }
    for (const [name, s] of Object.entries(services)) {
      if (name === 'migrate' || name.startsWith('loadgen')) continue;
      expect(s.healthcheck?.test?.length, `${name} has a health check`).toBeGreaterThan(0);
      expect(s.healthcheck?.disable, name).toBeUndefined();
    }
    for (const [name, s] of Object.entries(services)) {
      for (const [dep, cond] of Object.entries(s.depends_on ?? {})) {
        expect(services[dep], `${name} depends on ${dep}`).toBeDefined();
        const wanted = dep === 'migrate' ? 'service_completed_successfully' : 'service_healthy';
        expect(cond.condition, `${name} -> ${dep}`).toBe(wanted);
      }
    }
    expect(services.collector.deploy?.replicas).toBe(2);
  });

  it('runs each service as its own ClickHouse user, created by the migration step', () => {
    const env = (name: string) => services[name].environment ?? {};
    expect(env('migrate')).toMatchObject({
      CLICKHOUSE_USER: 'gatescope',
      CLICKHOUSE_WRITER_USER: 'gatescope_writer',
      CLICKHOUSE_READER_USER: 'gatescope_reader',
      CLICKHOUSE_SQL_USER: 'gatescope_sql',
    });
    expect(env('clickhouse').CLICKHOUSE_USER).toBe('gatescope'); // the administrator: the migrator only
    expect(env('collector').CLICKHOUSE_USER).toBe('gatescope_writer');
    expect(env('api').CLICKHOUSE_USER).toBe('gatescope_reader');
    expect(env('api').CLICKHOUSE_SQL_USER).toBe('gatescope_sql');
    expect(env('live').CLICKHOUSE_USER).toBe('gatescope_reader');
    // Each user's password is the one the migration step set for it.
    for (const [service, role] of [
      ['collector', 'WRITER'],
      ['api', 'READER'],
      ['live', 'READER'],
    ] as const)
      expect(env(service).CLICKHOUSE_PASSWORD, service).toBe(env('migrate')[`CLICKHOUSE_${role}_PASSWORD`]);
    expect(env('api').CLICKHOUSE_SQL_PASSWORD).toBe(env('migrate').CLICKHOUSE_SQL_PASSWORD);
    // Grafana's data source: the reader.
    expect(env('grafana').CLICKHOUSE_READER_USER).toBe('gatescope_reader');
    expect(env('grafana').CLICKHOUSE_READER_PASSWORD).toBe(env('migrate').CLICKHOUSE_READER_PASSWORD);
    const ds = parse(
      readFileSync(repo('dashboards/grafana/provisioning/datasources/clickhouse.yaml'), 'utf8'),
    ) as {
      datasources: { jsonData: { username: string }; secureJsonData: { password: string } }[];
    };
    expect(ds.datasources[0].jsonData.username).toBe('${CLICKHOUSE_READER_USER}');
    expect(ds.datasources[0].secureJsonData.password).toBe('${CLICKHOUSE_READER_PASSWORD}');
  });

  it('pins every image to a version', () => {
    for (const [name, s] of Object.entries(services)) {
      if (s.build) continue;
      expect(s.image, name).toMatch(/:v?\d+\.\d+(\.\d+)*$/);
    }
  });
});

describe('Prometheus', () => {
  const config = parse(readFileSync(PROMETHEUS, 'utf8')) as {
    scrape_configs: {
      job_name: string;
      authorization?: { type: string; credentials_file: string };
      metrics_path?: string;
      static_configs?: { targets: string[] }[];
      dns_sd_configs?: { names: string[]; port: number }[];
    }[];
  };

  it('passes promtool check config', () => {
    // promtool opens credential files: check the very file next to a stand-in for the token compose writes.
    const dir = mkdtempSync(join(tmpdir(), 'gs-promtool-'));
    copyFileSync(PROMETHEUS, join(dir, 'prometheus.yml'));
    writeFileSync(join(dir, 'metrics-token'), 'stand-in-token');
    const r = spawnSync('promtool', ['check', 'config', join(dir, 'prometheus.yml')], { encoding: 'utf8' });
    expect(r.error, 'promtool must be installed (test/setup/system-deps.sh)').toBeUndefined();
    expect(r.stdout + r.stderr).toMatch(/SUCCESS/);
    expect(r.status).toBe(0);
  });

  it("scrapes gatescope's /metrics with a token of the `metrics` scope that compose hands to both sides", () => {
    const gatescopeJobs = config.scrape_configs.filter((j) => j.job_name.startsWith('gatescope-'));
    expect(gatescopeJobs.length).toBe(4);
    for (const job of gatescopeJobs)
      expect(job.authorization, job.job_name).toEqual({ type: 'Bearer', credentials_file: 'metrics-token' });
    const prometheus = services.prometheus as Service & { entrypoint?: string[] };
    expect(prometheus.command?.join(' ')).toMatch(
      /printf %s "\$\$GATESCOPE_METRICS_TOKEN" > \/etc\/prometheus\/metrics-token && exec \/bin\/prometheus --config\.file=\/etc\/prometheus\/prometheus\.yml/,
    );
    expect(prometheus.environment?.GATESCOPE_METRICS_TOKEN).toBe('${GATESCOPE_METRICS_TOKEN:-}');
    for (const name of ['collector', 'api', 'live', 'alerts'])
      expect(services[name].environment?.GATESCOPE_TOKENS, name).toMatch(
        /(^|,)prometheus:\$\{GATESCOPE_METRICS_TOKEN:-\}:metrics$/,
      );
  });

  it('scrapes every gatescope service, Envoy admin and ClickHouse where they listen', () => {
    const targets = new Map<string, number>();
    for (const job of config.scrape_configs) {
      for (const t of job.static_configs?.flatMap((c) => c.targets) ?? []) {
        const [host, port] = t.split(':');
        targets.set(host, Number(port));
      }
      for (const d of job.dns_sd_configs ?? []) for (const n of d.names) targets.set(n, d.port);
    }
    for (const [name, s] of Object.entries(services)) {
      if (!gatescopeMain(s) || name === 'migrate') continue;
      expect(targets.get(name), `${name} is scraped on its GATESCOPE_HTTP_PORT`).toBe(httpPort(s));
    }
    const envoyAdmin = (
      parse(readFileSync(ENVOY, 'utf8')) as { admin: { address: { socket_address: { port_value: number } } } }
    ).admin.address.socket_address.port_value;
    expect(targets.get('envoy')).toBe(envoyAdmin);
    expect(config.scrape_configs.find((j) => j.job_name === 'envoy')?.metrics_path).toBe('/stats/prometheus');
    // Envoy's ALS counters carry the node its ALS identifier names: they join gatescope's ledger series on node_id.
    const envoyNode = (parse(readFileSync(ENVOY, 'utf8')) as { node: { id: string; cluster: string } }).node;
    const envoyJob = config.scrape_configs.find((j) => j.job_name === 'envoy') as
      { static_configs?: { labels?: Record<string, string> }[] } | undefined;
    expect(envoyJob?.static_configs?.[0]?.labels).toEqual({
      node_id: envoyNode.id,
      node_cluster: envoyNode.cluster,
    });
    const chPort = /<port>(\d+)<\/port>/.exec(
      readFileSync(repo('services/gatescope/deploy/clickhouse/prometheus.xml'), 'utf8'),
    )?.[1];
    expect(targets.get('clickhouse')).toBe(Number(chPort));
  });
});

// ---- Envoy: YAML -> envoy.config.bootstrap.v3.Bootstrap ----------------------------------------------------------

const root = envoyProtoRoot([
  'envoy/config/bootstrap/v3/bootstrap.proto',
  'envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto',
  'envoy/extensions/filters/http/router/v3/router.proto',
  'envoy/extensions/access_loggers/grpc/v3/als.proto',
  'envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.proto',
  'envoy/extensions/upstreams/http/v3/http_protocol_options.proto',
]);
const camel = (s: string) => s.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
// protobufjs defines google.protobuf.Any itself, with its proto field name (`type_url`), whatever the load options.
const TYPE_URL = root.lookupType('google.protobuf.Any').fields.typeUrl ? 'typeUrl' : 'type_url';
const WRAPPERS = /^\.google\.protobuf\.(Bool|U?Int(32|64)|Double|Float|String|Bytes)Value$/;

/**
 * Envoy's YAML (proto3 JSON mapping) into a protobufjs object of `type`, strictly: a key that is no field, an
 * enum name that does not exist or a value of the wrong shape is an error with its path. `typed_config` and every
 * other google.protobuf.Any is resolved by its `@type` against the loaded protos, converted the same strict way
 * and packed into bytes, as Envoy does; an `@type` whose proto is not loaded is an error, never skipped.
 */
function convert(type: protobuf.Type, value: unknown, at: string, errors: string[]): Record<string, unknown> {
  if (type.fullName === '.google.protobuf.Any') {
    const { '@type': url, ...rest } = value as Record<string, unknown>;
    if (typeof url !== 'string') {
      errors.push(`${at}: an Any without @type`);
      return {};
    }
    let inner: protobuf.Type;
    try {
      inner = root.lookupType(url.slice(url.lastIndexOf('/') + 1));
    } catch {
      errors.push(`${at}: @type ${url} is not a loaded proto`);
      return {};
    }
    const obj = convert(inner, rest, `${at}<${inner.name}>`, errors);
    return { [TYPE_URL]: url, value: inner.encode(inner.fromObject(obj)).finish() };
  }
  if (type.fullName === '.google.protobuf.Duration') {
    const m = typeof value === 'string' ? /^(-?\d+)(?:\.(\d{1,9}))?s$/.exec(value) : null;
    if (!m) errors.push(`${at}: ${JSON.stringify(value)} is not a Duration like "0.5s"`);
    return m ? { seconds: Number(m[1]), nanos: Number((m[2] ?? '').padEnd(9, '0')) } : {};
  }
  if (WRAPPERS.test(type.fullName)) return { value };
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    errors.push(`${at}: expected a ${type.name} object, got ${JSON.stringify(value)}`);
    return {};
  }
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) {
    const field = type.fields[camel(key)];
    if (!field) {
      errors.push(`${at}.${key}: ${type.fullName.slice(1)} has no such field`);
      continue;
    }
    field.resolve();
    const one = (x: unknown, p: string): unknown => {
      const rt = field.resolvedType;
      if (rt instanceof protobuf.Type) return convert(rt, x, p, errors);
      if (rt instanceof protobuf.Enum) {
        if (typeof x !== 'string' || !(x in rt.values))
          errors.push(`${p}: ${JSON.stringify(x)} is not a ${rt.name}`);
        return x;
      }
      const scalar = field.type;
      const ok =
        scalar === 'bool'
          ? typeof x === 'boolean'
          : scalar === 'string' || scalar === 'bytes'
            ? typeof x === 'string'
            : typeof x === 'number' || (typeof x === 'string' && /^-?\d+$/.test(x));
      if (!ok) errors.push(`${p}: ${JSON.stringify(x)} is not a ${scalar}`);
      return x;
    };
    const p = `${at}.${key}`;
    if (field.map) {
      out[field.name] = Object.fromEntries(
        Object.entries(v as Record<string, unknown>).map(([k, x]) => [k, one(x, `${p}[${k}]`)]),
      );
    } else if (field.repeated) {
      if (!Array.isArray(v)) errors.push(`${p}: expected a list`);
      out[field.name] = (Array.isArray(v) ? v : []).map((x, i) => one(x, `${p}[${i}]`));
    } else {
      out[field.name] = one(v, p);
    }
  }
  return out;
}

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
/** A decoded message as a plain object, with every Any unpacked (under `@type` + its fields) all the way down. */
function plain(type: protobuf.Type, message: protobuf.Message): Obj {
  const unpack = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(unpack);
    if (v && typeof v === 'object') {
      const o = v as Obj;
      const url = o[TYPE_URL];
      if (typeof url === 'string' && o.value instanceof Uint8Array) {
        const t = root.lookupType(url.slice(url.lastIndexOf('/') + 1));
        return {
          '@type': url,
          ...(unpack(t.toObject(t.decode(o.value), { enums: String, longs: Number })) as Obj),
        };
      }
      return Object.fromEntries(Object.entries(o).map(([k, x]) => [k, unpack(x)]));
    }
    return v;
  };
  return unpack(type.toObject(message, { enums: String, longs: Number })) as Obj;
}

describe('the Envoy config', () => {
  const Bootstrap = root.lookupType('envoy.config.bootstrap.v3.Bootstrap');
  const errors: string[] = [];
  const converted = convert(Bootstrap, parse(readFileSync(ENVOY, 'utf8')), 'bootstrap', errors);
  const wire = Bootstrap.encode(Bootstrap.fromObject(converted)).finish();
  const bootstrap = plain(Bootstrap, Bootstrap.decode(wire));
  const listener = (name: string) => bootstrap.staticResources.listeners.find((l: Obj) => l.name === name);
  const filter = (name: string) => listener(name).filterChains[0].filters[0].typedConfig;
  const clusters = new Map<string, Obj>(bootstrap.staticResources.clusters.map((c: Obj) => [c.name, c]));
  /** What every gRPC access logger must say: v3 ALS to the collectors' cluster, flushed every 0.5 s. */
  const grpcLogTo = (logName: string) => ({
    logName,
    transportApiVersion: 'V3',
    grpcService: { envoyGrpc: { clusterName: 'gatescope_als' } },
    bufferFlushInterval: { seconds: 0, nanos: 500_000_000 },
  });

  it('converts to envoy.config.bootstrap.v3.Bootstrap with every field known to Envoy', () => {
    expect(errors).toEqual([]);
    expect(Bootstrap.verify(Bootstrap.decode(wire))).toBeNull();
    expect(bootstrap.admin.address.socketAddress.portValue).toBe(9901);
    expect(bootstrap.staticResources.listeners.map((l: Obj) => l.name)).toEqual([
      'ingress_http',
      'ingress_tcp',
      'gatescope_ui',
    ]);
  });

  it('logs every HTTP request over gRPC ALS to the collectors (HTTP/2, every replica)', () => {
    const hcm = filter('ingress_http');
    expect(hcm['@type']).toBe(
      'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
    );
    expect(hcm.accessLog).toHaveLength(1);
    expect(hcm.accessLog[0].name).toBe('envoy.access_loggers.http_grpc');
    expect(hcm.accessLog[0].typedConfig).toEqual({
      '@type': 'type.googleapis.com/envoy.extensions.access_loggers.grpc.v3.HttpGrpcAccessLogConfig',
      commonConfig: grpcLogTo('ingress'),
      additionalResponseTrailersToLog: ['grpc-status'],
    });
    const als = clusters.get('gatescope_als')!;
    expect(als.type).toBe('STRICT_DNS');
    expect(
      als.typedExtensionProtocolOptions['envoy.extensions.upstreams.http.v3.HttpProtocolOptions']
        .explicitHttpConfig,
    ).toHaveProperty('http2ProtocolOptions');
    expect(als.loadAssignment.endpoints[0].lbEndpoints[0].endpoint.address.socketAddress).toEqual({
      address: 'collector',
      portValue: 8090,
    });
    expect(hcm.httpFilters.map((f: Obj) => f.typedConfig['@type'])).toEqual([
      'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router',
    ]);
  });

  it('splits the ingress 50/50 between frontend and frontendv2 on a named route, HTTP and TCP', () => {
    const [route] = filter('ingress_http').routeConfig.virtualHosts[0].routes;
    expect(route.name).toBe('frontend');
    expect(route.match).toEqual({ prefix: '/' });
    expect(route.route.weightedClusters.clusters).toEqual([
      { name: 'frontend', weight: { value: 50 } },
      { name: 'frontendv2', weight: { value: 50 } },
    ]);
    const tcp = filter('ingress_tcp');
    expect(tcp['@type']).toBe('type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy');
    expect(tcp.weightedClusters.clusters).toEqual([
      { name: 'frontend_tcp', weight: 50 },
      { name: 'frontendv2_tcp', weight: 50 },
    ]);
    expect(tcp.accessLog[0].name).toBe('envoy.access_loggers.tcp_grpc');
    expect(tcp.accessLog[0].typedConfig).toEqual({
      '@type': 'type.googleapis.com/envoy.extensions.access_loggers.grpc.v3.TcpGrpcAccessLogConfig',
      commonConfig: grpcLogTo('ingress_tcp'),
    });
  });

  it("fronts gatescope's UI: the live socket (websockets, sticky by client address) and the API", () => {
    const hcm = filter('gatescope_ui');
    expect(hcm.accessLog).toBeUndefined(); // gatescope's own traffic is not logged into gatescope
    expect(hcm.upgradeConfigs).toEqual([{ upgradeType: 'websocket' }]);
    const [liveRoute, apiRoute] = hcm.routeConfig.virtualHosts[0].routes;
    expect(liveRoute.match).toEqual({ prefix: '/socket.io/' });
    expect(liveRoute.route.cluster).toBe('gatescope_live');
    expect(liveRoute.route.hashPolicy).toEqual([{ connectionProperties: { sourceIp: true } }]);
    expect(clusters.get('gatescope_live')!.lbPolicy).toBe('RING_HASH');
    expect(apiRoute.route.cluster).toBe('gatescope_api');
  });

  it('routes only to clusters it defines, each pointing at a compose service on the port it serves', () => {
    const referenced = new Set<string>(['gatescope_als']);
    for (const l of bootstrap.staticResources.listeners) {
      const tc = l.filterChains[0].filters[0].typedConfig;
      for (const c of tc.weightedClusters?.clusters ?? []) referenced.add(c.name);
      for (const vh of tc.routeConfig?.virtualHosts ?? [])
        for (const r of vh.routes) {
          if (r.route.cluster) referenced.add(r.route.cluster);
          for (const c of r.route.weightedClusters?.clusters ?? []) referenced.add(c.name);
        }
    }
    expect([...referenced].sort()).toEqual([...clusters.keys()].sort());
    const ports: Record<string, number[]> = {
      collector: [8090],
      api: [httpPort(services.api)],
      live: [httpPort(services.live)],
      frontend: [8080, 8078],
      frontendv2: [8080, 8078],
    };
    for (const c of clusters.values()) {
      const sa = c.loadAssignment.endpoints[0].lbEndpoints[0].endpoint.address.socketAddress;
      expect(services[sa.address], `${c.name} -> ${sa.address}`).toBeDefined();
      expect(ports[sa.address], c.name).toContain(sa.portValue);
    }
  });
});
