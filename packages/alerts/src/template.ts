/**
 * Annotation templates, the subset of Prometheus' alert templating people write: `{{ $labels.route }}`,
 * `{{ $value }}`, `{{ $threshold }}`, `{{ $requests }}`, `{{ $window }}`, `{{ $metric }}`, `{{ $rule }}`, with an
 * optional `| humanize` (4 significant digits, k/M suffixes) or `| humanizePercentage` (0.0734 -> 7.34%).
 * Anything else is refused when the rule is saved, not discovered when it fires.
 */
export interface TemplateData {
  labels: Record<string, string>;
  value: number | null;
  threshold: number;
  requests: number;
  window: string;
  metric: string;
  rule: string;
}

const ACTION = /\{\{\s*([^}]*?)\s*\}\}/g;
const EXPR =
  /^\$(labels\.([A-Za-z_][A-Za-z0-9_]*)|value|threshold|requests|window|metric|rule)(?:\s*\|\s*(humanize|humanizePercentage))?$/;

/** Problems of a template (empty when it is fine). */
export function templateProblems(template: string): string[] {
  const problems: string[] = [];
  for (const m of template.matchAll(ACTION)) {
    if (!EXPR.test(m[1]))
      problems.push(
        `"{{ ${m[1]} }}" is not supported; use $labels.<name>, $value, $threshold, $requests, $window, $metric or $rule, optionally | humanize or | humanizePercentage`,
      );
  }
  return problems;
}

/** A number as people read it: at most 4 significant digits, no exponent for everyday sizes. */
export function formatNumber(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (v === 0) return '0';
  return String(Number(v.toPrecision(4)));
}

function humanize(v: number): string {
  const abs = Math.abs(v);
  for (const [suffix, size] of [
    ['G', 1e9],
    ['M', 1e6],
    ['k', 1e3],
  ] as const) {
    if (abs >= size) return `${formatNumber(v / size)}${suffix}`;
  }
  return formatNumber(v);
}

export function fillTemplate(template: string, data: TemplateData): string {
  return template.replace(ACTION, (whole, expr: string) => {
    const m = EXPR.exec(expr);
    if (!m) return whole;
    let v: string | number | null;
    if (m[2] !== undefined) v = data.labels[m[2]] ?? '';
    else v = data[m[1] as 'value' | 'threshold' | 'requests' | 'window' | 'metric' | 'rule'];
    if (v === null) return 'n/a';
    if (typeof v === 'number') {
      if (m[3] === 'humanizePercentage') return `${formatNumber(v * 100)}%`;
      if (m[3] === 'humanize') return humanize(v);
      return formatNumber(v);
    }
    return v;
  });
}

export function fillAnnotations(
  annotations: Record<string, string>,
  data: TemplateData,
): Record<string, string> {
  return Object.fromEntries(Object.entries(annotations).map(([k, t]) => [k, fillTemplate(t, data)]));
}
