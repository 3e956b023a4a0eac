import { QueryParamError } from './errors.js';

export type RawParams = Record<string, unknown>;

export interface TimeRange {
  /** Epoch milliseconds, inclusive. */
  from: number;
  /** Epoch milliseconds, exclusive. */
  to: number;
}

export const STATUS_CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx', 'none'] as const;
export type StatusClass = (typeof STATUS_CLASSES)[number];

/**
 * What a restricted token may see (its `Principal.restriction`): only these authorities and/or gateways (node id
 * or node cluster). Never from request parameters: the API adds it to the filters of every question.
 */
export interface Restriction {
  authorities?: readonly string[];
  gateways?: readonly string[];
}

/** Every analytics endpoint accepts these; each may be repeated (`?route=a&route=b`) to match any of the values. */
export interface Filters {
  /** The caller's token restriction, ANDed with everything else (so user filters can only narrow it). */
  restriction?: Restriction;
  gateway?: string[];
  authority?: string[];
  route?: string[];
  upstream_cluster?: string[];
  method?: string[];
  status_class?: StatusClass[];
  response_flag?: string[];
  path_template?: string[];
}
export const FILTER_NAMES = [
  'gateway',
  'authority',
  'route',
  'upstream_cluster',
  'method',
  'status_class',
  'response_flag',
  'path_template',
] as const satisfies readonly (keyof Filters)[];

const DURATION_UNITS: Record<string, number> = {
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};
export const DEFAULT_RANGE_MS = 15 * 60_000;
export const MAX_RANGE_MS = 400 * 86_400_000;

/** `5m`, `1h`, `7d`, `30s`, `2w` -> milliseconds; undefined when the text is not a duration. */
export function parseDuration(text: string): number | undefined {
  const m = /^(\d+)(s|m|h|d|w)$/.exec(text.trim());
  if (!m) return undefined;
  const ms = Number(m[1]) * DURATION_UNITS[m[2]];
  return ms > 0 ? ms : undefined;
}

/** RFC 3339 (`2024-05-01T10:00:00Z`) or epoch milliseconds (`1714557600000`) -> epoch ms. */
export function parseInstant(text: string, param: string): number {
  const t = text.trim();
  let ms: number;
  if (/^\d+$/.test(t)) ms = Number(t);
  else if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/i.test(t)) ms = Date.parse(t);
  else ms = NaN;
  if (!Number.isFinite(ms)) {
    throw new QueryParamError(
      'ERR_QUERY_BAD_TIME',
      param,
      `${param}="${text}" is not a time: use RFC 3339 with a zone (2024-05-01T10:00:00Z) or epoch milliseconds`,
    );
  }
  return ms;
}

function single(params: RawParams, name: string): string | undefined {
  const v = params[name];
  if (v === undefined || v === null || v === '') return undefined;
  if (Array.isArray(v)) {
    if (v.length !== 1)
      throw new QueryParamError('ERR_QUERY_BAD_PARAM', name, `${name} may be given only once`);
    return String(v[0]);
  }
  return String(v);
}

function list(params: RawParams, name: string): string[] | undefined {
  const v = params[name];
  if (v === undefined || v === null || v === '') return undefined;
  const values = (Array.isArray(v) ? v : [v]).map(String).filter((s) => s !== '');
  if (values.length > 100)
    throw new QueryParamError('ERR_QUERY_BAD_PARAM', name, `${name}: at most 100 values`);
  for (const s of values) {
    if (s.length > 2048)
      throw new QueryParamError(
        'ERR_QUERY_BAD_PARAM',
        name,
        `${name}: values are limited to 2048 characters`,
      );
  }
  return values.length ? values : undefined;
}

/** `from`/`to` (either may be omitted) or `range` ending at `to` (default now); default: the last 15 minutes. */
export function parseTimeRange(params: RawParams, now: number): TimeRange {
  const fromText = single(params, 'from');
  const toText = single(params, 'to');
  const rangeText = single(params, 'range');
  if (fromText !== undefined && rangeText !== undefined) {
    throw new QueryParamError(
      'ERR_QUERY_BAD_RANGE',
      'range',
      'Give either from (with an optional to) or range, not both',
    );
  }
  let rangeMs = DEFAULT_RANGE_MS;
  if (rangeText !== undefined) {
    const d = parseDuration(rangeText);
    if (d === undefined) {
      throw new QueryParamError(
        'ERR_QUERY_BAD_RANGE',
        'range',
        `range="${rangeText}" is not a duration: use a number and a unit s, m, h, d or w (5m, 1h, 7d)`,
      );
    }
    rangeMs = d;
  }
  const to = toText !== undefined ? parseInstant(toText, 'to') : now;
  const from = fromText !== undefined ? parseInstant(fromText, 'from') : to - rangeMs;
  if (from >= to) {
    throw new QueryParamError(
      'ERR_QUERY_BAD_RANGE',
      'from',
      `from (${new Date(from).toISOString()}) must be before to (${new Date(to).toISOString()})`,
    );
  }
  if (to - from > MAX_RANGE_MS) {
    throw new QueryParamError(
      'ERR_QUERY_BAD_RANGE',
      'range',
      'The time range is limited to 400 days: narrow from/to or range',
    );
  }
  return { from, to };
}

export function parseFilters(params: RawParams, restriction?: Restriction): Filters {
  const filters: Filters = restriction ? { restriction } : {};
  for (const name of FILTER_NAMES) {
    const values = list(params, name);
    if (!values) continue;
    if (name === 'status_class') {
      const bad = values.filter((v) => !(STATUS_CLASSES as readonly string[]).includes(v));
      if (bad.length) {
        throw new QueryParamError(
          'ERR_QUERY_BAD_PARAM',
          name,
          `status_class="${bad[0]}" is not one of ${STATUS_CLASSES.join(', ')}`,
        );
      }
      filters.status_class = values as StatusClass[];
    } else if (name === 'method') {
      filters.method = values.map((v) => v.toUpperCase());
    } else {
      filters[name] = values;
    }
  }
  return filters;
}

/** An integer parameter within bounds, or the default. */
export function parseIntParam(
  params: RawParams,
  name: string,
  dflt: number,
  min: number,
  max: number,
): number {
  const text = single(params, name);
  if (text === undefined) return dflt;
  const n = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new QueryParamError(
      'ERR_QUERY_BAD_PARAM',
      name,
      `${name}="${text}" must be an integer from ${min} to ${max}`,
    );
  }
  return n;
}

/** One of a fixed list of words, or the default. */
export function parseEnumParam<T extends string>(
  params: RawParams,
  name: string,
  allowed: readonly T[],
  dflt: T,
): T {
  const text = single(params, name);
  if (text === undefined) return dflt;
  if (!(allowed as readonly string[]).includes(text)) {
    throw new QueryParamError(
      'ERR_QUERY_BAD_PARAM',
      name,
      `${name}="${text}" is not one of ${allowed.join(', ')}`,
    );
  }
  return text as T;
}

export function parseNumberParam(params: RawParams, name: string): number | undefined {
  const text = single(params, name);
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isFinite(n) || n < 0)
    throw new QueryParamError('ERR_QUERY_BAD_PARAM', name, `${name}="${text}" must be a non-negative number`);
  return n;
}

export { single as singleParam, list as listParam };
