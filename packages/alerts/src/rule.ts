import { isIP } from 'node:net';
import { LineCounter, parseDocument, isNode } from 'yaml';
import { z } from 'zod';
import {
  DIMENSION_COLUMNS,
  FILTER_NAMES,
  parseFilters,
  QueryParamError,
  type Dimension,
  type Filters,
} from '@gatescope/query';
import { parseAlertDuration } from './duration.js';
import { resolveMetric, type MetricDef } from './metrics.js';
import { templateProblems } from './template.js';

/**
 * Rules and receivers: the provisioning file's format (README, "Alerting") and the API's bodies, one schema.
 * Names are the file's contract: extend it, keep them.
 */

export const COMPARISONS = ['>', '>=', '<', '<='] as const;
export type Comparison = (typeof COMPARISONS)[number];
/** What `group_by` accepts: the API's dimensions every source keeps. */
export const GROUP_BY_DIMENSIONS = Object.keys(DIMENSION_COLUMNS) as Dimension[];

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/;
const LABEL_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const nameField = (what: string) =>
  z
    .string({ error: `${what} needs a name` })
    .regex(NAME, `${what} names are 1-128 letters, digits, _ . : - starting with a letter or digit`);
const duration = (what: string, dflt?: string) => {
  const s = z
    .string({ error: `${what} must be a duration such as 30s, 5m or 1h` })
    .refine((v) => parseAlertDuration(v) !== undefined, {
      error: (issue) =>
        `"${String(issue.input)}" is not a duration; use a number and a unit s, m, h, d or w (30s, 5m, 1h)`,
    });
  return dflt === undefined ? s : s.default(dflt);
};
const labelMap = (what: string) =>
  z
    .record(
      z.string().regex(LABEL_NAME, `${what} names are letters, digits and _ (not starting with a digit)`),
      z.union([z.string(), z.number(), z.boolean()]).transform(String),
    )
    .default({});

const filterValue = z.union([z.string(), z.array(z.string()).min(1)]);

export const ruleSchema = z
  .object({
    name: nameField('A rule'),
    metric: z.string({ error: 'metric is required' }),
    filter: z.record(z.string(), filterValue).default({}),
    group_by: z.array(z.string()).default([]),
    op: z.enum(COMPARISONS, { error: `op must be one of ${COMPARISONS.join(' ')}` }),
    threshold: z.number({ error: 'threshold must be a number' }).finite(),
    window: duration('window', '5m'),
    for: duration('for', '0s'),
    min_requests: z.number().int('min_requests must be a whole number').min(0).default(1),
    labels: labelMap('label'),
    annotations: labelMap('annotation'),
    receivers: z.array(nameField('A receiver')).default([]),
    enabled: z.boolean().default(true),
  })
  .strict();
export type AlertRule = z.output<typeof ruleSchema>;

export const receiverSchema = z
  .object({
    name: nameField('A receiver'),
    url: z.string({ error: 'url is required' }),
    secret: z.string().min(1).optional(),
    allow_private_network: z.boolean().default(false),
    timeout: duration('timeout', '10s'),
    group_by: z.array(z.string().regex(LABEL_NAME, 'group_by names label names')).default(['alertname']),
    group_wait: duration('group_wait', '30s'),
    group_interval: duration('group_interval', '5m'),
    repeat_interval: duration('repeat_interval', '4h'),
    send_resolved: z.boolean().default(true),
  })
  .strict();
export type Receiver = z.output<typeof receiverSchema>;

export const alertsFileSchema = z
  .object({
    receivers: z.array(z.unknown()).default([]),
    rules: z.array(z.unknown()).default([]),
  })
  .strict();

/** The labels of an ingest metric's series: one series per gateway node, as the ledger keys it. */
export const INGEST_SERIES_LABELS = ['node_id', 'node_cluster', 'log_name'] as const;
/** The only filter ingest metrics take: `gateway` (a node_id or node_cluster), like a token's gateway scope. */
const INGEST_FILTERS = ['gateway'];

/** A rule with everything the evaluator needs worked out once. */
export interface CompiledRule {
  rule: AlertRule;
  metric: MetricDef;
  filters: Filters;
  groupBy: Dimension[];
  /** The label names of each series' `groupValues`, in order: `groupBy` for traffic, node labels for ingest. */
  seriesLabels: readonly string[];
  windowMs: number;
  forMs: number;
}

export class AlertConfigError extends Error {
  readonly code = 'ERR_ALERT_CONFIG';
  constructor(readonly problems: string[]) {
    super(
      problems.length === 1 ? problems[0] : `${problems.length} problems:\n  - ${problems.join('\n  - ')}`,
    );
    this.name = 'AlertConfigError';
  }
}

function zodProblems(err: z.ZodError, where: (path: PropertyKey[]) => string): string[] {
  return err.issues.map((i) => `${where(i.path)}${i.path.length ? i.path.join('.') + ': ' : ''}${i.message}`);
}

/** The checks beyond the shape: metric, filters, group_by, labels, templates. Returns the problems. */
function ruleProblems(rule: AlertRule): { problems: string[]; compiled?: CompiledRule } {
  const problems: string[] = [];
  const metric = resolveMetric(rule.metric);
  if ('error' in metric) problems.push(`metric: ${metric.error}`);
  const ingest = !('error' in metric) && metric.source === 'ingest';
  let filters: Filters = {};
  const unknownFilter = Object.keys(rule.filter).find(
    (k) => !(FILTER_NAMES as readonly string[]).includes(k),
  );
  const notIngestFilter = ingest
    ? Object.keys(rule.filter).find((k) => !INGEST_FILTERS.includes(k))
    : undefined;
  if (unknownFilter)
    problems.push(`filter: "${unknownFilter}" is not a filter; use ${FILTER_NAMES.join(', ')}`);
  else if (notIngestFilter)
    problems.push(
      `filter: ${rule.metric} is measured per gateway node, not per request: "${notIngestFilter}" does not apply; ` +
        'only gateway (a node_id or node_cluster) narrows which nodes it watches',
    );
  else {
    try {
      filters = parseFilters(rule.filter);
    } catch (err) {
      if (err instanceof QueryParamError) problems.push(`filter: ${err.message}`);
      else throw err;
    }
  }
  if (ingest && rule.group_by.length)
    problems.push(
      `group_by: ${rule.metric} is always per gateway node (labels ${INGEST_SERIES_LABELS.join(', ')}); remove group_by`,
    );
  const badGroup = ingest
    ? undefined
    : rule.group_by.find((g) => !GROUP_BY_DIMENSIONS.includes(g as Dimension));
  if (badGroup) problems.push(`group_by: "${badGroup}" is not one of ${GROUP_BY_DIMENSIONS.join(', ')}`);
  if (new Set(rule.group_by).size !== rule.group_by.length)
    problems.push('group_by: a dimension is repeated');
  const seriesLabels: readonly string[] = ingest ? INGEST_SERIES_LABELS : rule.group_by;
  for (const reserved of ['alertname', ...seriesLabels]) {
    if (reserved in rule.labels)
      problems.push(
        `labels: "${reserved}" is set by the rule itself (alertname, ${ingest ? 'the node labels' : 'group_by dimensions'})`,
      );
  }
  for (const [k, v] of Object.entries(rule.annotations)) {
    for (const p of templateProblems(v)) problems.push(`annotations.${k}: ${p}`);
  }
  const windowMs = parseAlertDuration(rule.window)!;
  if (windowMs < 1000) problems.push('window: must be at least 1s');
  if (problems.length || 'error' in metric) return { problems };
  return {
    problems,
    compiled: {
      rule,
      metric,
      filters,
      groupBy: rule.group_by as Dimension[],
      seriesLabels,
      windowMs,
      forMs: parseAlertDuration(rule.for)!,
    },
  };
}

/** Validate one rule (an API body or a file entry): the rule with defaults filled in, or every problem. */
export function parseRule(input: unknown, where = ''): CompiledRule {
  const parsed = ruleSchema.safeParse(input);
  if (!parsed.success) throw new AlertConfigError(zodProblems(parsed.error, () => where));
  const { problems, compiled } = ruleProblems(parsed.data);
  if (!compiled) throw new AlertConfigError(problems.map((p) => where + p));
  return compiled;
}

/**
 * Where a receiver's URL may point, from the URL alone: http(s), a host, no user info (secrets go in `secret`
 * or the URL's path, which is never shown back). Address checks happen at delivery (`checkAddress`, after DNS).
 */
export function urlProblems(url: string): string[] {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return [`url: "${url}" is not a URL; use https://host/path`];
  }
  const problems: string[] = [];
  if (u.protocol !== 'https:' && u.protocol !== 'http:')
    problems.push(`url: ${u.protocol} is not http: or https:`);
  if (u.username || u.password)
    problems.push(
      'url: user info (user:password@) is not allowed; put credentials in the path or use secret',
    );
  if (!u.hostname) problems.push('url: needs a host');
  const host = u.hostname.replace(/^\[(.*)\]$/, '$1');
  if (isIP(host) === 0 && !/^[A-Za-z0-9.-]+$/.test(host)) problems.push(`url: "${host}" is not a host name`);
  return problems;
}

/** Validate one receiver. */
export function parseReceiver(input: unknown, where = ''): Receiver {
  const parsed = receiverSchema.safeParse(input);
  if (!parsed.success) throw new AlertConfigError(zodProblems(parsed.error, () => where));
  const problems = urlProblems(parsed.data.url);
  if (problems.length) throw new AlertConfigError(problems.map((p) => where + p));
  return parsed.data;
}

export interface AlertsFile {
  receivers: Receiver[];
  rules: CompiledRule[];
}

/**
 * The provisioning file (`GATESCOPE_ALERTS_FILE`): every problem at once, each with its line and the field's
 * path (`alerts.yaml:12: rules[1].op: op must be one of > >= < <=`).
 */
export function parseAlertsFile(text: string, fileName = 'alerts file'): AlertsFile {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: true });
  if (doc.errors.length)
    throw new AlertConfigError(doc.errors.map((e) => `${fileName}: YAML: ${e.message.split('\n')[0]}`));
  const lineOf = (path: PropertyKey[]): string => {
    for (let n = path.length; n >= 0; n--) {
      const node = doc.getIn(path.slice(0, n) as (string | number)[], true);
      if (isNode(node) && node.range) return `${fileName}:${lineCounter.linePos(node.range[0]).line}: `;
    }
    return `${fileName}: `;
  };
  const data = doc.toJS() ?? {};
  const top = alertsFileSchema.safeParse(data);
  if (!top.success) throw new AlertConfigError(zodProblems(top.error, lineOf));
  const problems: string[] = [];
  const receivers: Receiver[] = [];
  const rules: CompiledRule[] = [];
  const collect = <T>(kind: 'receivers' | 'rules', parse: (v: unknown, where: string) => T, out: T[]) =>
    top.data[kind].forEach((entry, i) => {
      try {
        out.push(parse(entry, ''));
      } catch (err) {
        if (!(err instanceof AlertConfigError)) throw err;
        for (const p of err.problems) {
          // Problems start with the field path inside the entry (`op: …`): point at that field's line.
          const field = /^([A-Za-z_][A-Za-z0-9_.]*): /.exec(p)?.[1];
          const path: PropertyKey[] = [
            kind,
            i,
            ...(field ? field.split('.').map((s) => (/^\d+$/.test(s) ? Number(s) : s)) : []),
          ];
          problems.push(`${lineOf(path)}${kind}[${i}].${p}`);
        }
      }
    });
  collect('receivers', parseReceiver, receivers);
  collect('rules', parseRule, rules);
  problems.push(
    ...crossProblems(
      receivers,
      rules.map((r) => r.rule),
    ).map((p) => `${fileName}: ${p}`),
  );
  if (problems.length) throw new AlertConfigError(problems);
  return { receivers, rules };
}

/** Unique names; every receiver a rule names exists. */
export function crossProblems(receivers: Receiver[], rules: AlertRule[]): string[] {
  const problems: string[] = [];
  const dup = (names: string[]) => names.find((n, i) => names.indexOf(n) !== i);
  const r = dup(receivers.map((x) => x.name));
  if (r) problems.push(`receiver "${r}" is defined twice`);
  const d = dup(rules.map((x) => x.name));
  if (d) problems.push(`rule "${d}" is defined twice`);
  const known = new Set(receivers.map((x) => x.name));
  for (const rule of rules)
    for (const name of rule.receivers)
      if (!known.has(name))
        problems.push(`rule "${rule.name}" names receiver "${name}", which is not defined`);
  return problems;
}
