export { loadConfig, ConfigError, isLoopbackHost, TOKEN_SCOPES } from './config.js';
export type {
  Config,
  ApiToken,
  TokenRestriction,
  TokenScope,
  ClickHouseCredentials,
  QueryLimits,
} from './config.js';
