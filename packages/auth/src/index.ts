export { authenticate, bearerToken, type AuthOutcome, type Principal } from './auth.js';
