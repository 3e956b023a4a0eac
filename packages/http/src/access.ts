import type {
  FastifyInstance,
  FastifyPluginAsync,
  FastifyPluginCallback,
  FastifyPluginOptions,
  RouteOptions,
} from 'fastify';
import type { Principal } from '@gatescope/auth';
import type { TokenScope } from '@gatescope/config';

/**
 * What a route needs: `public` (no token), or a token with this scope (`admin` covers `read`, `read` covers
 * `metrics`). Every route declares it, `config: { access: 'read' }`; a route that declares nothing stops the
 * server at boot, so a route cannot be forgotten. Third-party plugins' routes (static files, Swagger UI) get
 * theirs by being registered through `withAccess`.
 */
export type Access = 'public' | TokenScope;
export const ACCESS_LEVELS: readonly Access[] = ['public', 'metrics', 'read', 'admin'];

declare module 'fastify' {
  interface FastifyContextConfig {
    access?: Access;
  }
  interface FastifyRequest {
    /** Who is asking, set by the boundary before any handler of a non-public route runs. */
    auth?: Principal;
  }
}

/** One row of the route table the boundary logs at start (`http routes`) and the attack suite walks. */
export interface RouteAccess {
  method: string;
  url: string;
  access: Access;
}

const DEFAULT_ACCESS = Symbol.for('gatescope.http.defaultAccess');
type WithDefault = FastifyInstance & { [DEFAULT_ACCESS]?: Access };

/**
 * Register a plugin whose routes cannot carry our route config (static files, Swagger UI): every route it adds
 * gets `access` unless it declares its own.
 */
export function withAccess<O extends FastifyPluginOptions>(
  access: Access,
  plugin: FastifyPluginAsync<O> | FastifyPluginCallback<O>,
): FastifyPluginAsync<O> {
  return async (instance, opts) => {
    (instance as WithDefault)[DEFAULT_ACCESS] = access;
    await instance.register(plugin as FastifyPluginAsync<O>, opts);
  };
}

/** The onRoute hook: settle each route's access or refuse to start. Rows go to `table`. */
export function declareAccess(table: RouteAccess[]) {
  return function onRoute(this: FastifyInstance, route: RouteOptions): void {
    const access = route.config?.access ?? (this as WithDefault)[DEFAULT_ACCESS];
    const methods = ([] as string[]).concat(route.method);
    if (access === undefined || !ACCESS_LEVELS.includes(access)) {
      throw new Error(
        `Route ${methods.join(',')} ${route.url} declares no valid access: add config: { access: ${ACCESS_LEVELS.map((a) => `'${a}'`).join(' | ')} } ` +
          '(or register its plugin through withAccess): gatescope refuses to serve a route nobody decided on',
      );
    }
    route.config = { ...route.config, access };
    const urls = [route.url];
    // A plugin's '/' route under a prefix is also registered as `prefix/`, without a second onRoute call.
    const { routePath, prefixTrailingSlash } = route as { routePath?: string; prefixTrailingSlash?: string };
    if (routePath === '' && (prefixTrailingSlash ?? 'both') === 'both') urls.push(`${route.url}/`);
    for (const method of methods)
      for (const url of urls)
        if (!table.some((r) => r.method === method && r.url === url)) table.push({ method, url, access });
  };
}
