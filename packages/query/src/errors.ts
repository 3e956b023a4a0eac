/** A question that cannot be answered as asked: an HTTP status and a stable code, with a message a user can act on. */
export class QueryError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'QueryError';
  }
}

/** A request parameter that cannot be used as given: HTTP 400 with a stable code naming the parameter. */
export class QueryParamError extends QueryError {
  constructor(
    code: string,
    readonly param: string,
    message: string,
  ) {
    super(400, code, message);
    this.name = 'QueryParamError';
  }
}
