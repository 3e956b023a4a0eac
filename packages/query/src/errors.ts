/** A request parameter that cannot be used as given: HTTP 400 with a stable code naming the parameter. */
export class QueryParamError extends Error {
  readonly status = 400;
  constructor(
    readonly code: string,
    readonly param: string,
    message: string,
  ) {
    super(message);
    this.name = 'QueryParamError';
  }
}
