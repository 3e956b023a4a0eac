import { decodeStreamAccessLogsMessageWithProtobufjs, encodeStreamAccessLogsMessage } from '@gatescope/als';
import { describe, expect, it } from 'vitest';
import { demoEntry, demoIdentifier, FRONTEND_V1, FRONTEND_V2, seededRandom } from './traffic.js';

const sample = (n: number) => {
  const rnd = seededRandom(42);
  return Array.from({ length: n }, () => demoEntry(rnd, 1_700_000_000_000)) as Array<{
    common_properties: {
      route_name: string;
      upstream_cluster: string;
      response_flags: Record<string, boolean>;
      duration: { seconds: number; nanos: number };
    };
    response: { response_code?: { value: number } };
  }>;
};

describe('demo traffic', () => {
  const entries = sample(20_000);
  const ms = (d: { seconds: number; nanos: number }) => d.seconds * 1000 + d.nanos / 1e6;
  const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];

  it('splits the canary route 50/50 between frontend and frontendv2, v2 slightly slower', () => {
    const canary = entries.filter(
      (e) => e.common_properties.route_name === 'frontend-canary' && e.response.response_code?.value === 200,
    );
    const v1 = canary.filter((e) => e.common_properties.upstream_cluster === FRONTEND_V1);
    const v2 = canary.filter((e) => e.common_properties.upstream_cluster === FRONTEND_V2);
    expect(v1.length / (v1.length + v2.length)).toBeGreaterThan(0.47);
    expect(v1.length / (v1.length + v2.length)).toBeLessThan(0.53);
    const m1 = median(v1.map((e) => ms(e.common_properties.duration)));
    const m2 = median(v2.map((e) => ms(e.common_properties.duration)));
    expect(m2).toBeGreaterThan(m1 * 1.2);
    expect(m2).toBeLessThan(m1 * 2);
  });

  it('has several routes and a trickle of UH/UF/URX 5xx, NR 404s and DC client resets', () => {
    const routes = new Set(entries.map((e) => e.common_properties.route_name).filter(Boolean));
    expect(routes.size).toBeGreaterThanOrEqual(6);
    const withFlag = (f: string) => entries.filter((e) => e.common_properties.response_flags[f]);
    const uh = withFlag('no_healthy_upstream');
    const uf = withFlag('upstream_connection_failure');
    const urx = withFlag('upstream_retry_limit_exceeded');
    for (const set of [uh, uf, urx]) {
      expect(set.length).toBeGreaterThan(0);
      expect(set.every((e) => e.response.response_code?.value === 503)).toBe(true);
    }
    const fivexx =
      entries.filter((e) => (e.response.response_code?.value ?? 0) >= 500).length / entries.length;
    expect(fivexx).toBeGreaterThan(0.001);
    expect(fivexx).toBeLessThan(0.02);
    const nr = withFlag('no_route_found');
    expect(nr.length / entries.length).toBeGreaterThan(0.005);
    expect(
      nr.every((e) => e.response.response_code?.value === 404 && e.common_properties.route_name === ''),
    ).toBe(true);
    const dc = withFlag('downstream_connection_termination');
    expect(dc.length).toBeGreaterThan(0);
    expect(dc.every((e) => e.response.response_code === undefined)).toBe(true);
  });

  it('encodes as a valid StreamAccessLogsMessage with the identifier', () => {
    const bytes = encodeStreamAccessLogsMessage({
      identifier: demoIdentifier(),
      http_logs: { log_entry: sample(50) },
    });
    const decoded = decodeStreamAccessLogsMessageWithProtobufjs(bytes).toJSON() as {
      identifier: { node: { id: string } };
      httpLogs: { logEntry: unknown[] };
    };
    expect(decoded.identifier.node.id).toMatch(/^router~/);
    expect(decoded.httpLogs.logEntry).toHaveLength(50);
  });
});
