export { authenticate, bearerToken, type AuthOutcome } from './auth.js';
