export { ACCESS_LEVELS, declareAccess, withAccess, type Access, type RouteAccess } from './access.js';
export { DOCS_CSP, HELMET_OPTIONS, NON_DOCUMENT_HEADERS } from './headers.js';
export {
  checkHostAndOrigin,
  hostPolicyFor,
  parseHostHeader,
  type HostPolicy,
  type HostVerdict,
} from './host-policy.js';
export { errorSchema, opsRoutes, type OpsOptions } from './ops.js';
export { canonicalPath, firstSegment, secretInQuery } from './paths.js';
export { createHttpApp, routeTable, type HttpAppOptions } from './server.js';
