export { buildApp, type ApiDeps } from './app.js';
export { ApiError } from './errors.js';
export { engineReason } from './sql.js';
