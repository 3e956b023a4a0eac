import type { Filters } from '@gatescope/query';
/**
 * Live filters: what a socket may narrow its `stats` or `tail` stream to. Identical filters (whatever
 * the key order, blank values or surrounding spaces) normalise to the same key, so every socket that
 * asks for the same view shares one computation.
 */
export interface LiveFilters {
  /**
   * The socket's token restriction (never from the client): part of the key, so a restricted socket never
   * shares a computation with an unrestricted one or with another restriction.
   */
  restriction?: { authorities?: readonly string[]; gateways?: readonly string[] };
  route?: string;
  authority?: string;
  /** Matches either the Envoy node id or the node cluster (the gateway deployment). */
  gateway?: string;
  upstream_cluster?: string;
}

export const LIVE_FILTER_NAMES = ['route', 'authority', 'gateway', 'upstream_cluster'] as const;
export type LiveFilterName = (typeof LIVE_FILTER_NAMES)[number];
export const MAX_FILTER_VALUE_LENGTH = 1024;

export class LiveFilterError extends Error {
  readonly code = 'ERR_LIVE_BAD_FILTER';
  constructor(message: string) {
    super(message);
    this.name = 'LiveFilterError';
  }
}

/** Validate untrusted input (from a socket) into canonical filters; throws LiveFilterError with a clear message. */
export function normaliseFilters(input: unknown): LiveFilters {
  if (input === undefined || input === null) return {};
  if (typeof input !== 'object' || Array.isArray(input)) {
    throw new LiveFilterError(
      `filters must be an object such as { "route": "checkout" }, got ${Array.isArray(input) ? 'an array' : typeof input}`,
    );
  }
  const out: LiveFilters = {};
  for (const [name, raw] of Object.entries(input as Record<string, unknown>)) {
    if (!(LIVE_FILTER_NAMES as readonly string[]).includes(name)) {
      throw new LiveFilterError(`unknown filter "${name}"; live filters are ${LIVE_FILTER_NAMES.join(', ')}`);
    }
    if (raw === undefined || raw === null) continue;
    if (typeof raw !== 'string') throw new LiveFilterError(`filter "${name}" must be a string`);
    const value = raw.trim();
    if (value.length > MAX_FILTER_VALUE_LENGTH) {
      throw new LiveFilterError(`filter "${name}" is longer than ${MAX_FILTER_VALUE_LENGTH} characters`);
    }
    if (value !== '') out[name as LiveFilterName] = value;
  }
  return out;
}

/** A socket's filters with its token restriction added (the restriction comes from the token, not the request). */
export function withRestriction(
  filters: LiveFilters,
  restriction: LiveFilters['restriction'] | undefined,
): LiveFilters {
  if (!restriction || (!restriction.authorities && !restriction.gateways)) return filters;
  const r: NonNullable<LiveFilters['restriction']> = {};
  if (restriction.authorities) r.authorities = [...new Set(restriction.authorities)].sort();
  if (restriction.gateways) r.gateways = [...new Set(restriction.gateways)].sort();
  return { ...filters, restriction: r };
}

/** A stable key for normalised filters: same filters, same key. `""` means no filter. */
export function filterKey(filters: LiveFilters): string {
  const parts: string[] = [];
  const r = filters.restriction;
  if (r?.authorities) parts.push(`restricted_authority=${r.authorities.map(encodeURIComponent).join('|')}`);
  if (r?.gateways) parts.push(`restricted_gateway=${r.gateways.map(encodeURIComponent).join('|')}`);
  for (const name of LIVE_FILTER_NAMES) {
    const v = filters[name];
    if (v !== undefined) parts.push(`${name}=${encodeURIComponent(v)}`);
  }
  return parts.join('&');
}

/**
 * The live filters as @gatescope/query filters: the WHERE clause is then the API's own (every value a bound
 * parameter), so a live view and the same API question select the same rows.
 */
export function liveQueryFilters(filters: LiveFilters): Filters {
  const out: Filters = {};
  if (filters.restriction) out.restriction = filters.restriction;
  for (const name of LIVE_FILTER_NAMES) {
    const v = filters[name];
    if (v !== undefined) out[name] = [v];
  }
  return out;
}
