export {
  authenticate,
  bearerToken,
  CREDENTIAL_QUERY_PARAMS,
  hasScope,
  type AuthOutcome,
  type Principal,
} from './auth.js';
