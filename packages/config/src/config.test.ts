import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig } from './config.js';

describe('loadConfig', () => {
  it('gives the documented defaults with no environment', () => {
    const c = loadConfig({});
    expect(c.host).toBe('127.0.0.1');
    expect(c.httpPort).toBe(8080);
    expect(c.alsPort).toBe(8090);
    expect(c.dataDir).toMatch(/\/data$/);
    expect(c.clickhouse.url).toBeUndefined();
    expect(c.clickhouse.database).toBe('gatescope');
    expect(c.ingest.batchMaxRows).toBe(10_000);
    expect(c.ingest.batchMaxDelayMs).toBe(500);
    expect(c.ingest.batchBusyDelayMs).toBe(2_000);
    expect(c.ingest.decoderWorkers).toBe(2);
    expect(Object.isFrozen(c) && Object.isFrozen(c.ingest)).toBe(true);
  });

  it('lists every problem at once, naming the variable and what to do', () => {
    try {
      loadConfig({
        GATESCOPE_HTTP_PORT: 'eighty',
        CLICKHOUSE_URL: 'not a url',
        GATESCOPE_RETENTION_DAYS: '99999',
        GATESCOPE_BATCH_BUSY_DELAY_MS: '-1',
      });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      const msg = (err as Error).message;
      expect(msg).toMatch(/GATESCOPE_HTTP_PORT/);
      expect(msg).toMatch(/CLICKHOUSE_URL must be a URL/);
      expect(msg).toMatch(/GATESCOPE_RETENTION_DAYS must be at most 3650/);
      expect(msg).toMatch(/GATESCOPE_BATCH_BUSY_DELAY_MS must be >= 0 \(0 turns busy batching off\)/);
    }
  });

  it('refuses a non-loopback address without tokens, and says how to fix it', () => {
    expect(() => loadConfig({ GATESCOPE_HOST: '0.0.0.0' })).toThrow(
      /GATESCOPE_TOKENS.*GATESCOPE_ALLOW_UNAUTHENTICATED=1/s,
    );
    expect(
      loadConfig({ GATESCOPE_HOST: '0.0.0.0', GATESCOPE_ALLOW_UNAUTHENTICATED: '1' }).auth
        .allowUnauthenticated,
    ).toBe(true);
    expect(loadConfig({ GATESCOPE_HOST: '::1' }).host).toBe('::1');
  });

  it('parses tokens with scopes; admin implies read implies metrics; weak or malformed tokens are refused', () => {
    const c = loadConfig({
      GATESCOPE_HOST: '0.0.0.0',
      GATESCOPE_TOKENS:
        'grafana:r3ad-0nly-secret:read, ops:adm1n-secret-x:admin, prom:metr1cs-secret:metrics',
    });
    expect(c.auth.tokens).toEqual([
      { name: 'grafana', token: 'r3ad-0nly-secret', scopes: ['read', 'metrics'] },
      { name: 'ops', token: 'adm1n-secret-x', scopes: ['admin', 'read', 'metrics'] },
      { name: 'prom', token: 'metr1cs-secret', scopes: ['metrics'] },
    ]);
    expect(() => loadConfig({ GATESCOPE_TOKENS: 'x:short:read' })).toThrow(/shorter than 8/);
    expect(() => loadConfig({ GATESCOPE_TOKENS: 'x:long-enough-secret:write' })).toThrow(
      /scopes metrics, read and\/or admin/,
    );
  });

  it('reads the HTTP boundary settings: allowed hosts, public metrics, TLS files', () => {
    const d = loadConfig({});
    expect(d.http).toEqual({ allowedHosts: [], metricsPublic: false, tls: undefined });
    const c = loadConfig({
      GATESCOPE_ALLOWED_HOSTS: ' Gatescope.Example.com. , gs.internal,[::1],10.0.0.7',
      GATESCOPE_METRICS_PUBLIC: '1',
      GATESCOPE_TLS_CERT_FILE: 'package.json',
      GATESCOPE_TLS_KEY_FILE: 'package.json',
    });
    expect(c.http.allowedHosts).toEqual(['gatescope.example.com', 'gs.internal', '::1', '10.0.0.7']);
    expect(c.http.metricsPublic).toBe(true);
    expect(c.http.tls?.certFile).toMatch(/^\/.*package\.json$/);
    for (const bad of ['https://gs.example.com', 'gs.example.com:8443', 'gs.example.com/ui', '*']) {
      expect(() => loadConfig({ GATESCOPE_ALLOWED_HOSTS: bad }), bad).toThrow(
        /GATESCOPE_ALLOWED_HOSTS: ".*" is not a host name; list names without scheme, port or path/,
      );
    }
    expect(() => loadConfig({ GATESCOPE_TLS_CERT_FILE: 'package.json' })).toThrow(/set both .* or neither/);
    expect(() =>
      loadConfig({
        GATESCOPE_TLS_CERT_FILE: '/nonexistent/cert.pem',
        GATESCOPE_TLS_KEY_FILE: 'package.json',
      }),
    ).toThrow(/GATESCOPE_TLS_CERT_FILE \(\/nonexistent\/cert.pem\) cannot be read/);
  });

  it('selects the server engine with CLICKHOUSE_URL', () => {
    const c = loadConfig({
      CLICKHOUSE_URL: 'http://clickhouse:8123',
      CLICKHOUSE_USER: 'gs',
      CLICKHOUSE_PASSWORD: 'pw',
      CLICKHOUSE_CLUSTER: 'main',
      GATESCOPE_CLICKHOUSE_TIMEOUT_MS: '5000',
    });
    expect(c.clickhouse).toEqual({
      url: 'http://clickhouse:8123',
      username: 'gs',
      password: 'pw',
      database: 'gatescope',
      cluster: 'main',
      requestTimeoutMs: 5000,
      roles: {},
    });
    expect(loadConfig({}).clickhouse.requestTimeoutMs).toBe(60_000);
    expect(() => loadConfig({ GATESCOPE_CLICKHOUSE_TIMEOUT_MS: '0' })).toThrow(
      /GATESCOPE_CLICKHOUSE_TIMEOUT_MS must be > 0/,
    );
    expect(() => loadConfig({ CLICKHOUSE_DATABASE: 'x; DROP TABLE y' })).toThrow(/plain identifier/);
  });

  it('takes a read-only user and an ad-hoc SQL user for a server, never for the embedded engine', () => {
    const c = loadConfig({
      CLICKHOUSE_URL: 'http://clickhouse:8123',
      CLICKHOUSE_READER_USER: 'gatescope_reader',
      CLICKHOUSE_READER_PASSWORD: 'r',
      CLICKHOUSE_SQL_USER: 'gatescope_sql',
      CLICKHOUSE_SQL_PASSWORD: 's',
    });
    expect(c.clickhouse.roles).toEqual({
      reader: { username: 'gatescope_reader', password: 'r' },
      sql: { username: 'gatescope_sql', password: 's' },
    });
    expect(() => loadConfig({ CLICKHOUSE_SQL_USER: 'gatescope_sql' })).toThrow(/needs CLICKHOUSE_URL/);
    expect(() => loadConfig({ CLICKHOUSE_URL: 'http://c:8123', CLICKHOUSE_SQL_USER: "x' OR 1" })).toThrow(
      /CLICKHOUSE_SQL_USER must be a plain identifier/,
    );
  });

  it('has SQL and query limits with defaults, each validated', () => {
    const c = loadConfig({});
    expect(c.sql).toEqual({
      limits: {
        maxExecutionTimeS: 30,
        maxMemoryBytes: 1024 ** 3,
        maxThreads: 1,
        maxResultRows: 100_000,
        maxResultBytes: 32 * 1024 ** 2,
      },
      concurrency: 1,
      queue: 4,
    });
    expect(c.query.limits).toEqual({ maxExecutionTimeS: 30, maxMemoryBytes: 2 * 1024 ** 3, maxThreads: 2 });
    const bad = () => loadConfig({ GATESCOPE_SQL_CONCURRENCY: '0', GATESCOPE_QUERY_MAX_THREADS: 'many' });
    expect(bad).toThrow(/GATESCOPE_SQL_CONCURRENCY must be > 0/);
    expect(bad).toThrow(/GATESCOPE_QUERY_MAX_THREADS must be a number/);
  });

  it('parses token restrictions from the tokens file and the inline syntax', () => {
    const dir = mkdtempSync(join(tmpdir(), 'gs-config-'));
    const file = join(dir, 'tokens.json');
    writeFileSync(
      file,
      JSON.stringify([
        {
          name: 'team-a',
          token: 'team-a-secret-1',
          scopes: ['read'],
          authorities: ['shop.example.com', 'shop.example.com:8443'],
        },
        { name: 'gw', token: 'gw-secret-12345', scopes: ['admin'], gateways: ['edge'] },
        { name: 'ops', token: 'ops-secret-12345', scopes: ['admin'] },
      ]),
    );
    const c = loadConfig({
      GATESCOPE_TOKENS_FILE: file,
      GATESCOPE_TOKENS:
        'team-b:team-b-secret-1:read:authority=api.example.com:8080|b.example.com;gateway=router~10.0.0.7~gw-1.ns~ns.svc.cluster.local',
    });
    const byName = Object.fromEntries(c.auth.tokens.map((t) => [t.name, t]));
    expect(byName['team-a'].restriction).toEqual({
      authorities: ['shop.example.com', 'shop.example.com:8443'],
    });
    expect(byName.gw.restriction).toEqual({ gateways: ['edge'] });
    expect(byName.ops.restriction).toBeUndefined();
    expect(byName['team-b'].restriction).toEqual({
      authorities: ['api.example.com:8080', 'b.example.com'],
      gateways: ['router~10.0.0.7~gw-1.ns~ns.svc.cluster.local'],
    });
    writeFileSync(
      file,
      JSON.stringify([{ name: 'x', token: 'x-secret-12345', scopes: ['read'], authorities: [] }]),
    );
    expect(() => loadConfig({ GATESCOPE_TOKENS_FILE: file })).toThrow(
      /"authorities" of token "x" must be a non-empty list/,
    );
    writeFileSync(
      file,
      JSON.stringify([
        { name: 'x', token: 'x-secret-12345', scopes: ['read'], authorities: ["a.com' OR 1=1"] },
      ]),
    );
    expect(() => loadConfig({ GATESCOPE_TOKENS_FILE: file })).toThrow(
      /must be a non-empty list of host names/,
    );
    expect(() => loadConfig({ GATESCOPE_TOKENS: 'x:x-secret-12345:read:host=a' })).toThrow(
      /restriction "host=a" must be authority=a\|b or gateway=g\|h/,
    );
  });
});

describe('write-ahead log and dead letters', () => {
  it('is on by default, with a 100 ms group commit and 1 GiB bounds', () => {
    const c = loadConfig({});
    expect(c.wal).toEqual({
      enabled: true,
      syncIntervalMs: 100,
      maxBytes: 1024 ** 3,
      deadLetterMaxBytes: 1024 ** 3,
    });
    expect(c.ingest.maxClockSkewS).toBe(300);
    expect(Object.isFrozen(c.wal)).toBe(true);
  });
  it('turns off with 0, false or no, and reads its numbers', () => {
    for (const off of ['0', 'false', 'no'])
      expect(loadConfig({ GATESCOPE_WAL_ENABLED: off }).wal.enabled).toBe(false);
    expect(loadConfig({ GATESCOPE_WAL_ENABLED: '1' }).wal.enabled).toBe(true);
    const c = loadConfig({
      GATESCOPE_WAL_SYNC_INTERVAL_MS: '200',
      GATESCOPE_WAL_MAX_BYTES: String(64 * 1024 ** 2),
      GATESCOPE_DEAD_LETTER_MAX_BYTES: '1000',
      GATESCOPE_ALS_MAX_CLOCK_SKEW_SECONDS: '60',
    });
    expect([c.wal.syncIntervalMs, c.wal.maxBytes, c.wal.deadLetterMaxBytes, c.ingest.maxClockSkewS]).toEqual([
      200,
      64 * 1024 ** 2,
      1000,
      60,
    ]);
  });
  it('refuses nonsense, naming the variable', () => {
    expect(() => loadConfig({ GATESCOPE_WAL_ENABLED: 'maybe' })).toThrow(/GATESCOPE_WAL_ENABLED/);
    expect(() => loadConfig({ GATESCOPE_WAL_SYNC_INTERVAL_MS: '0' })).toThrow(
      /GATESCOPE_WAL_SYNC_INTERVAL_MS must be > 0/,
    );
    expect(() => loadConfig({ GATESCOPE_WAL_SYNC_INTERVAL_MS: '60000' })).toThrow(/at most 10000/);
    expect(() => loadConfig({ GATESCOPE_WAL_MAX_BYTES: '1000' })).toThrow(/at least 16777216/);
    expect(() => loadConfig({ GATESCOPE_ALS_MAX_CLOCK_SKEW_SECONDS: '999999' })).toThrow(
      /GATESCOPE_ALS_MAX_CLOCK_SKEW_SECONDS must be at most 86400/,
    );
  });
});

describe('ALS limits and TLS', () => {
  it('has a default for every limit', () => {
    expect(loadConfig({}).ingest).toMatchObject({
      maxPendingBytes: 128 * 1024 * 1024,
      maxMessageBytes: 4 * 1024 * 1024,
      maxEntriesPerMessage: 10_000,
      maxStringBytes: 65_536,
      maxIdentifierBytes: 1_024,
      maxStreams: 1_024,
      maxStreamsPerConnection: 100,
      streamIdleTimeoutS: 300,
      maxHeaderBytes: 8_192,
    });
    expect(loadConfig({}).ingest.tls).toBeUndefined();
    expect(loadConfig({ GATESCOPE_ALS_STREAM_IDLE_TIMEOUT_SECONDS: '0' }).ingest.streamIdleTimeoutS).toBe(0);
  });

  it('refuses nonsense limits, naming the variable', () => {
    expect(() => loadConfig({ GATESCOPE_ALS_MAX_ENTRIES_PER_MESSAGE: '0' })).toThrow(
      /GATESCOPE_ALS_MAX_ENTRIES_PER_MESSAGE must be > 0/,
    );
    expect(() => loadConfig({ GATESCOPE_ALS_MAX_HEADER_BYTES: '100000' })).toThrow(/at most 65535/);
    expect(() => loadConfig({ GATESCOPE_ALS_STREAM_IDLE_TIMEOUT_SECONDS: '-1' })).toThrow(/>= 0/);
  });

  it('takes certificate and key together, a client CA only with them, and checks the files exist', () => {
    const dir = mkdtempSync(join(tmpdir(), 'gs-config-tls-'));
    const file = (name: string) => {
      writeFileSync(join(dir, name), 'pem');
      return join(dir, name);
    };
    const [cert, key, ca] = [file('cert.pem'), file('key.pem'), file('ca.pem')];
    expect(
      loadConfig({ GATESCOPE_ALS_TLS_CERT_FILE: cert, GATESCOPE_ALS_TLS_KEY_FILE: key }).ingest.tls,
    ).toEqual({
      certFile: cert,
      keyFile: key,
    });
    expect(
      loadConfig({
        GATESCOPE_ALS_TLS_CERT_FILE: cert,
        GATESCOPE_ALS_TLS_KEY_FILE: key,
        GATESCOPE_ALS_TLS_CLIENT_CA_FILE: ca,
      }).ingest.tls?.clientCaFile,
    ).toBe(ca);
    expect(() => loadConfig({ GATESCOPE_ALS_TLS_CERT_FILE: cert })).toThrow(/go together/);
    expect(() => loadConfig({ GATESCOPE_ALS_TLS_CLIENT_CA_FILE: ca })).toThrow(
      /needs GATESCOPE_ALS_TLS_CERT_FILE/,
    );
    expect(() =>
      loadConfig({ GATESCOPE_ALS_TLS_CERT_FILE: cert, GATESCOPE_ALS_TLS_KEY_FILE: join(dir, 'missing.pem') }),
    ).toThrow(/GATESCOPE_ALS_TLS_KEY_FILE \(.*missing\.pem\) cannot be read/);
  });
});
