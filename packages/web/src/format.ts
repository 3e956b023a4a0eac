export const fmtNum = (v: number | null | undefined, digits = 1): string => {
  if (v === null || v === undefined || !Number.isFinite(v)) return '–';
  if (Math.abs(v) >= 1e6) return `${(v / 1e6).toFixed(digits)}M`;
  if (Math.abs(v) >= 1e4) return `${(v / 1e3).toFixed(digits)}k`;
  return Number.isInteger(v) ? String(v) : v.toFixed(digits);
};
/** `3,077`: counts that people read exactly. */
export const fmtCount = (v: number | null | undefined): string =>
  v === null || v === undefined || !Number.isFinite(v) ? '–' : Math.round(v).toLocaleString('en-US');
export const fmtPct = (v: number | null | undefined): string => {
  if (v === null || v === undefined || !Number.isFinite(v)) return '–';
  const p = v * 100;
  return `${p === 0 ? '0' : p < 0.1 ? p.toFixed(3) : p < 10 ? p.toFixed(2) : p.toFixed(1)} %`;
};
export const fmtMs = (v: number | null | undefined): string => {
  if (v === null || v === undefined || !Number.isFinite(v)) return '–';
  const a = Math.abs(v);
  if (a >= 10_000) return `${(v / 1000).toFixed(1)} s`;
  if (a >= 100) return `${v.toFixed(0)} ms`;
  if (a >= 1) return `${v.toFixed(1)} ms`;
  return `${v.toFixed(2)} ms`;
};
/** A signed difference: `+12.0 ms`, `−0.07 pp`. */
export const fmtSigned = (v: number | null | undefined, fmt: (x: number) => string): string => {
  if (v === null || v === undefined || !Number.isFinite(v)) return '–';
  if (v === 0) return `±${fmt(0)}`;
  return `${v > 0 ? '+' : '−'}${fmt(Math.abs(v))}`;
};
/** Percentage points between two rates (0..1). */
export const fmtPp = (v: number | null | undefined): string =>
  fmtSigned(
    v === null || v === undefined ? v : v * 100,
    (x) => `${x < 0.1 && x > 0 ? x.toFixed(3) : x.toFixed(2)} pp`,
  );
/** A ratio as `×1.44`. */
export const fmtRatio = (v: number | null | undefined): string =>
  v === null || v === undefined || !Number.isFinite(v) ? '–' : `×${v >= 10 ? v.toFixed(1) : v.toFixed(2)}`;
export const fmtBytes = (v: number | null | undefined): string => {
  if (v === null || v === undefined || !Number.isFinite(v)) return '–';
  if (v >= 1024 ** 3) return `${(v / 1024 ** 3).toFixed(1)} GiB`;
  if (v >= 1024 ** 2) return `${(v / 1024 ** 2).toFixed(1)} MiB`;
  if (v >= 1024) return `${(v / 1024).toFixed(1)} KiB`;
  return `${v} B`;
};
export const fmtCell = (v: unknown): string => {
  if (v === null || v === undefined) return '';
  if (Array.isArray(v)) return v.join(',');
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
};

/** Istio's `outbound|80||frontend.default.svc.cluster.local` -> `frontend.default` (the full name goes in a tooltip). */
export function shortCluster(cluster: string): string {
  return cluster.replace(/^outbound\|\d*\|[^|]*\|/, '').replace(/\.svc\.cluster\.local$/, '');
}
/** A span as people say it: `42 s`, `3 min 20 s`, `2 h 5 min`, `3 d 4 h` (for "last seen … ago", "firing for …"). */
export function fmtAge(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '–';
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return s % 60 ? `${m} min ${s % 60} s` : `${m} min`;
  const h = Math.floor(m / 60);
  if (h < 24) return m % 60 ? `${h} h ${m % 60} min` : `${h} h`;
  const d = Math.floor(h / 24);
  return h % 24 ? `${d} d ${h % 24} h` : `${d} d`;
}
