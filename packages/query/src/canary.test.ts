import { describe, expect, it } from 'vitest';
import { chooseBaseline, compareCanary, serviceName, spanLabel, type ClusterStats } from './canary.js';

const V1 = 'outbound|80||frontend.default.svc.cluster.local';
const V2 = 'outbound|80||frontendv2.default.svc.cluster.local';
const c = (
  upstream_cluster: string,
  requests: number,
  p50: number,
  p99: number,
  error_rate = 0,
): ClusterStats => ({
  upstream_cluster,
  requests,
  error_rate,
  p50_ms: p50,
  p90_ms: p50 * 2,
  p99_ms: p99,
});

describe('canary baseline', () => {
  it('is the user choice when it is one of the clusters (full, short or service name)', () => {
    const list = [c(V1, 10, 1, 1), c(V2, 20, 1, 1)];
    expect(chooseBaseline(list, V2)).toEqual({ name: V2, by: 'user' });
    expect(chooseBaseline(list, 'frontendv2.default')).toEqual({ name: V2, by: 'user' });
    expect(chooseBaseline(list, 'frontendv2')).toEqual({ name: V2, by: 'user' });
    expect(chooseBaseline(list, 'nope')).toEqual({ name: V1, by: 'name' });
  });

  it('is by name the stable cluster others extend with a version, whichever is busier', () => {
    expect(chooseBaseline([c(V2, 3000, 1, 1), c(V1, 10, 1, 1)])).toEqual({ name: V1, by: 'name' });
    expect(chooseBaseline([c('reviews-v2', 5, 1, 1), c('reviews-v1', 3, 1, 1)])).toEqual({
      name: 'reviews-v1',
      by: 'name',
    });
    expect(chooseBaseline([c('a', 5, 1, 1), c('b', 9, 1, 1)])).toEqual({ name: 'b', by: 'largest' });
    expect(chooseBaseline([c('', 9, 1, 1)])).toEqual({ name: null, by: 'none' });
    expect(serviceName(V2)).toBe('frontendv2');
  });
});

describe('canary comparison', () => {
  it('compares every cluster with the baseline and names the slower one', () => {
    const r = compareCanary(
      [c(V2, 1540, 26, 76, 0.0016), c(V1, 1537, 18, 57, 0.0009), c('', 3, 0.5, 0.5, 1)],
      '1h',
    );
    expect(r.baseline).toBe(V1);
    expect(r.slower).toBe(V2);
    const v2 = r.clusters.find((x) => x.upstream_cluster === V2)!;
    expect(v2.vs_baseline!.p50_ms_diff).toBe(8);
    expect(v2.vs_baseline!.p50_ratio).toBeCloseTo(26 / 18);
    expect(v2.vs_baseline!.error_rate_diff).toBeCloseTo(0.0007);
    expect(v2.share).toBeCloseTo(1540 / 3080);
    expect(r.clusters.find((x) => x.upstream_cluster === '')!.vs_baseline).toBeNull();
    expect(r.clusters.find((x) => x.upstream_cluster === V1)!.vs_baseline).toBeNull();
    expect(r.verdict).toBe(
      'frontendv2.default is slower than frontend.default: +44 % p50, +33 % p99, +0.07 pp 5xx over 1h, n = 1,540 vs 1,537.',
    );
  });

  it('against the canary as baseline, the stable one is faster; too few requests are not judged', () => {
    const r = compareCanary([c(V2, 1540, 26, 76), c(V1, 1537, 18, 57)], '15m', V2);
    expect(r.baseline_chosen_by).toBe('user');
    expect(r.slower).toBeNull();
    expect(r.verdict).toMatch(/^frontend\.default is faster than frontendv2\.default: −31 % p50/);
    const few = compareCanary([c(V2, 40, 26, 76), c(V1, 37, 18, 57)], '5m');
    expect(few.verdict).toMatch(/too few requests to judge/);
    expect(few.slower).toBeNull();
    expect(compareCanary([c(V1, 10, 1, 1)], '5m').verdict).toMatch(/^Only frontend.default served/);
    expect(compareCanary([], '5m').verdict).toMatch(/^No upstream cluster/);
  });

  it('says the span in words', () => {
    expect(spanLabel(0, 3_600_000, '1h')).toBe('1h');
    expect(spanLabel(0, 45 * 60_000)).toBe('45m');
    expect(spanLabel(0, 150 * 60_000)).toBe('2h 30m');
    expect(spanLabel(0, 5 * 86_400_000)).toBe('5d');
  });
});
