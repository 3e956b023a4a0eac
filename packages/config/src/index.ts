export { loadConfig, ConfigError, isLoopbackHost } from './config.js';
export type { Config, ApiToken, TokenRestriction, TokenScope } from './config.js';
