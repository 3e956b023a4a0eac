export { loadConfig, ConfigError, isLoopbackHost } from './config.js';
export type { Config, ApiToken, TokenScope } from './config.js';
