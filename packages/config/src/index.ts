export { loadConfig, ConfigError, isLoopbackHost, TOKEN_SCOPES } from './config.js';
export type { Config, ApiToken, TokenRestriction, TokenScope } from './config.js';
