import { BoundedCache } from './bounded-cache.js';
import { stripQuery, templateStrippedPath } from './normalise.js';
import { applyRules, compileRules, type CompiledRule, type PathTemplateRule } from './rules.js';

export interface PathTemplaterOptions {
  /** Evaluated in order before the built-in normaliser; the first whole-path match wins. */
  rules?: PathTemplateRule[];
  /** Distinct templates kept per route before new ones fold into {@link OTHER_TEMPLATE}. Default 200. */
  maxTemplatesPerRoute?: number;
  /** Path -> template entries cached. Default 10 000; 0 disables the cache. */
  cacheSize?: number;
}

/** What a route's templates fold into once it has reached `maxTemplatesPerRoute`. */
export const OTHER_TEMPLATE = '/{other}';
export const DEFAULT_MAX_TEMPLATES_PER_ROUTE = 200;
export const DEFAULT_CACHE_SIZE = 10_000;
/** Paths longer than this (query excluded) are templated on every call instead of being cached. */
export const MAX_CACHED_PATH_LENGTH = 1024;

/**
 * Turns request paths into templates for the ingest hot path: user rules first, then the built-in
 * normaliser ({@link templatePath}), through a bounded cache, then a per-route cardinality cap.
 *
 * Memory: the cache holds at most `cacheSize` paths of at most {@link MAX_CACHED_PATH_LENGTH} chars;
 * the cap holds at most `maxTemplatesPerRoute` templates per route. Routes are Envoy route names, a
 * set bounded by the gateway config.
 */
export class PathTemplater {
  private readonly rules: CompiledRule[];
  private readonly maxTemplatesPerRoute: number;
  private readonly cache: BoundedCache;
  private readonly seenByRoute = new Map<string, Set<string>>();

  constructor(options: PathTemplaterOptions = {}) {
    this.rules = compileRules(options.rules ?? []);
    const max = options.maxTemplatesPerRoute ?? DEFAULT_MAX_TEMPLATES_PER_ROUTE;
    if (!Number.isInteger(max) || max < 1) {
      throw new RangeError(`maxTemplatesPerRoute must be an integer >= 1, got ${max}`);
    }
    this.maxTemplatesPerRoute = max;
    this.cache = new BoundedCache(options.cacheSize ?? DEFAULT_CACHE_SIZE);
  }

  /** Template for `path` (as Envoy's :path, query included) under `route`. */
  template(route: string, path: string): string {
    return this.cap(route, this.templateUncapped(stripQuery(path)));
  }

  /** Entries currently cached (for tests and metrics). */
  get cacheEntries(): number {
    return this.cache.size;
  }

  private templateUncapped(path: string): string {
    const cacheable = path.length <= MAX_CACHED_PATH_LENGTH;
    if (cacheable) {
      const hit = this.cache.get(path);
      if (hit !== undefined) return hit;
    }
    const result = applyRules(this.rules, path) ?? templateStrippedPath(path);
    if (cacheable) this.cache.set(path, result);
    return result;
  }

  private cap(route: string, template: string): string {
    let seen = this.seenByRoute.get(route);
    if (seen === undefined) {
      seen = new Set();
      this.seenByRoute.set(route, seen);
    }
    if (seen.has(template)) return template;
    if (seen.size >= this.maxTemplatesPerRoute) return OTHER_TEMPLATE;
    seen.add(template);
    return template;
  }
}
