import type { Stats } from './stats.js';

/**
 * The canary view's decision, pure: which upstream cluster is the baseline, every other cluster against it (Δ and
 * ratio for share, 5xx rate, p50/p90/p99), and a verdict line that names the slower cluster. The no-upstream row
 * (requests Envoy answered itself: UH, NR, direct responses) is shown but never compared.
 */
export interface ClusterStats extends Pick<
  Stats,
  'requests' | 'error_rate' | 'p50_ms' | 'p90_ms' | 'p99_ms'
> {
  upstream_cluster: string;
}

export interface VsBaseline {
  share_diff: number;
  share_ratio: number | null;
  error_rate_diff: number;
  error_rate_ratio: number | null;
  p50_ms_diff: number | null;
  p50_ratio: number | null;
  p90_ms_diff: number | null;
  p90_ratio: number | null;
  p99_ms_diff: number | null;
  p99_ratio: number | null;
}

export interface CanaryCluster extends ClusterStats {
  baseline: boolean;
  share: number;
  vs_baseline: VsBaseline | null;
}

export type BaselineChoice = 'user' | 'name' | 'largest' | 'none';

export interface CanaryResult {
  baseline: string | null;
  baseline_chosen_by: BaselineChoice;
  clusters: CanaryCluster[];
  verdict: string;
  /** The cluster the verdict names as slower than the baseline (by p50, then p99), if any. */
  slower: string | null;
}

/** Below this many requests on either side, the verdict says there is too little to judge. */
export const MIN_CANARY_REQUESTS = 100;
/** Latency differences smaller than this share of the baseline are "about the same". */
export const SAME_LATENCY = 0.05;

const VERSION_MARK = /(?:[-_.]?v\d+|[-_.](?:canary|next|new|beta|green|blue|preview))$/i;

/** `outbound|80||frontendv2.default.svc.cluster.local` -> `frontendv2` (the service name). */
export function serviceName(cluster: string): string {
  const host = cluster.replace(/^outbound\|\d*\|[^|]*\|/, '');
  return host.split('.')[0] ?? host;
}

/** `frontend.default`: what people call a cluster (Istio's direction, port and domain dropped). */
export function shortClusterName(cluster: string): string {
  return cluster.replace(/^outbound\|\d*\|[^|]*\|/, '').replace(/\.svc\.cluster\.local$/, '');
}

/**
 * The baseline: the user's choice if it is one of the clusters; else, by name, the stable one (the cluster whose
 * service name, without a version or canary mark, others extend: `frontend` for `frontendv2`); else the busiest.
 */
export function chooseBaseline(
  clusters: readonly ClusterStats[],
  wanted?: string,
): { name: string | null; by: BaselineChoice } {
  const real = clusters.filter((c) => c.upstream_cluster !== '');
  if (real.length === 0) return { name: null, by: 'none' };
  if (wanted) {
    const hit = real.find(
      (c) =>
        c.upstream_cluster === wanted ||
        shortClusterName(c.upstream_cluster) === wanted ||
        serviceName(c.upstream_cluster) === wanted,
    );
    if (hit) return { name: hit.upstream_cluster, by: 'user' };
  }
  if (real.length >= 2) {
    const names = real.map((c) => serviceName(c.upstream_cluster));
    const stable = real.filter((c, i) => {
      const n = names[i];
      if (VERSION_MARK.test(n) && !/v1$/i.test(n)) return false;
      const base = n.replace(/[-_.]?v1$/i, '');
      return names.some((o, j) => j !== i && o !== n && o.startsWith(base));
    });
    if (stable.length === 1) return { name: stable[0].upstream_cluster, by: 'name' };
  }
  const busiest = real.reduce((a, b) => (b.requests > a.requests ? b : a));
  return { name: busiest.upstream_cluster, by: 'largest' };
}

const diff = (a: number | null, b: number | null) => (a === null || b === null ? null : a - b);
const ratio = (a: number | null, b: number | null) => (a === null || b === null || b === 0 ? null : a / b);

const pct = (r: number | null) =>
  r === null ? '–' : `${r >= 1 ? '+' : '−'}${Math.abs((r - 1) * 100).toFixed(0)} %`;
const pp = (d: number) => `${d >= 0 ? '+' : '−'}${Math.abs(d * 100).toFixed(2)} pp`;
const count = (n: number) => Math.round(n).toLocaleString('en-US');

/** Compare every cluster with the baseline and say what it means over `span` (e.g. "1h"). */
export function compareCanary(
  clusters: readonly ClusterStats[],
  span: string,
  wanted?: string,
): CanaryResult {
  const total = clusters.reduce((s, c) => s + c.requests, 0);
  const { name: baseName, by } = chooseBaseline(clusters, wanted);
  const base = clusters.find((c) => c.upstream_cluster === baseName);
  const share = (c: ClusterStats) => (total ? c.requests / total : 0);
  const out: CanaryCluster[] = clusters.map((c) => {
    const isBase = c === base;
    const vs: VsBaseline | null =
      !base || isBase || c.upstream_cluster === ''
        ? null
        : {
            share_diff: share(c) - share(base),
            share_ratio: ratio(share(c), share(base)),
            error_rate_diff: c.error_rate - base.error_rate,
            error_rate_ratio: ratio(c.error_rate, base.error_rate),
            p50_ms_diff: diff(c.p50_ms, base.p50_ms),
            p50_ratio: ratio(c.p50_ms, base.p50_ms),
            p90_ms_diff: diff(c.p90_ms, base.p90_ms),
            p90_ratio: ratio(c.p90_ms, base.p90_ms),
            p99_ms_diff: diff(c.p99_ms, base.p99_ms),
            p99_ratio: ratio(c.p99_ms, base.p99_ms),
          };
    return { ...c, baseline: isBase, share: share(c), vs_baseline: vs };
  });
  const { verdict, slower } = verdictOf(out, base, span);
  return { baseline: base?.upstream_cluster ?? null, baseline_chosen_by: by, clusters: out, verdict, slower };
}

/**
 * One line per compared cluster, worst first: "frontendv2: +44 % p50, +12 % p99, +0.07 pp 5xx vs frontend over 1h,
 * n = 3,077 / 3,012 — slower". With no other cluster, or too few requests, it says so.
 */
export function verdictOf(
  clusters: readonly CanaryCluster[],
  base: ClusterStats | undefined,
  span: string,
): { verdict: string; slower: string | null } {
  if (!base) return { verdict: `No upstream cluster answered this route over ${span}.`, slower: null };
  const others = clusters.filter((c) => c.vs_baseline);
  const baseLabel = shortClusterName(base.upstream_cluster);
  if (others.length === 0)
    return {
      verdict: `Only ${baseLabel} served this route over ${span} (n = ${count(base.requests)}): nothing to compare.`,
      slower: null,
    };
  const judged = others.map((c) => {
    const v = c.vs_baseline!;
    const label = shortClusterName(c.upstream_cluster);
    const n = `n = ${count(c.requests)} vs ${count(base.requests)}`;
    if (c.requests < MIN_CANARY_REQUESTS || base.requests < MIN_CANARY_REQUESTS)
      return {
        c,
        slow: false,
        score: 0,
        text: `${label}: too few requests to judge over ${span} (${n}; at least ${MIN_CANARY_REQUESTS} each)`,
      };
    const p50 = v.p50_ratio;
    const p99 = v.p99_ratio;
    const slow = (p50 !== null && p50 > 1 + SAME_LATENCY) || (p99 !== null && p99 > 1 + SAME_LATENCY);
    const fast =
      !slow && ((p50 !== null && p50 < 1 - SAME_LATENCY) || (p99 !== null && p99 < 1 - SAME_LATENCY));
    const word = slow ? 'slower than' : fast ? 'faster than' : 'about as fast as';
    const text = `${label} is ${word} ${baseLabel}: ${pct(p50)} p50, ${pct(p99)} p99, ${pp(v.error_rate_diff)} 5xx over ${span}, ${n}`;
    return { c, slow, score: Math.max(p50 ?? 0, p99 ?? 0), text };
  });
  judged.sort((a, b) => Number(b.slow) - Number(a.slow) || b.score - a.score);
  const slowest = judged.find((j) => j.slow);
  return { verdict: judged.map((j) => j.text).join('. ') + '.', slower: slowest?.c.upstream_cluster ?? null };
}

/** A span in words for the verdict: the `range` the caller gave (1h), else the length (`45m`, `2h 30m`). */
export function spanLabel(fromMs: number, toMs: number, range?: string): string {
  if (range) return range;
  const m = Math.round((toMs - fromMs) / 60_000);
  if (m < 1) return `${Math.round((toMs - fromMs) / 1000)}s`;
  if (m < 60) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 48) return m % 60 ? `${h}h ${m % 60}m` : `${h}h`;
  return `${Math.round(h / 24)}d`;
}
