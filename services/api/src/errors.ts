import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { QueryError } from '@gatescope/query';

/** An error the API answers with as `{ error: { code, message } }` and an HTTP status. */
export class ApiError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export { errorSchema } from '@gatescope/http';

interface ClickHouseLikeError {
  code?: string;
  type?: string;
  message: string;
}

const UNREACHABLE = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ERR_CLICKHOUSE_UNAVAILABLE',
]);

/** What @clickhouse/client rejects with when a request saw no bytes for its `request_timeout`. */
const CLIENT_TIMEOUT_MESSAGE = 'Timeout error.';

/** The one error handler: every failure leaves as `{ error: { code, message } }` with a fitting status. */
export function errorHandler(err: FastifyError | Error, request: FastifyRequest, reply: FastifyReply): void {
  let status = 500;
  let code = 'ERR_INTERNAL';
  let message = 'Internal error: the details are in the server log (request id ' + request.id + ')';
  const e = err as FastifyError & ClickHouseLikeError;
  if (err instanceof ApiError) {
    status = err.statusCode;
    code = err.code;
    message = err.message;
  } else if (err instanceof QueryError) {
    status = err.status;
    code = err.code;
    message = err.message;
  } else if (e.validation) {
    status = 400;
    code = 'ERR_BAD_REQUEST';
    const v = e.validation[0] as
      { params?: { additionalProperty?: string }; instancePath?: string } | undefined;
    message = v?.params?.additionalProperty
      ? `Unknown parameter "${v.params.additionalProperty}": see /docs for the parameters this endpoint takes`
      : `Invalid request: ${e.message}`;
  } else if (e.statusCode === 429) {
    status = 429;
    code = 'ERR_RATE_LIMITED';
    message = e.message;
  } else if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    status = e.statusCode;
    code = e.code?.startsWith('FST_') ? 'ERR_BAD_REQUEST' : (e.code ?? 'ERR_BAD_REQUEST');
    message = e.message;
  } else if (err.message === CLIENT_TIMEOUT_MESSAGE) {
    status = 504;
    code = 'ERR_CLICKHOUSE_TIMEOUT';
    message =
      'ClickHouse did not answer within GATESCOPE_CLICKHOUSE_TIMEOUT_MS and the query was abandoned: ' +
      'ask for a shorter range, or check the server (and raise the timeout if it is only slow)';
  } else if (e.code && UNREACHABLE.has(e.code)) {
    status = 503;
    code = 'ERR_CLICKHOUSE_UNAVAILABLE';
    message = `ClickHouse is not reachable (${e.message}): check CLICKHOUSE_URL and that the server is up`;
  }
  if (status >= 500) request.log.error({ err }, 'request failed');
  void reply.status(status).send({ error: { code, message } });
}
