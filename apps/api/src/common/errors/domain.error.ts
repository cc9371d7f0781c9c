/**
 * An expected failure with a stable code (`BOOKING.SEAT_UNAVAILABLE`). Services throw it; the
 * problem-details filter turns it into application/problem+json with its status and extensions.
 */
export class DomainError extends Error {
  constructor(
    readonly code: string,
    readonly status: number,
    readonly title: string,
    detail: string,
    /** Extra members of the problem body, e.g. `conflictingSeats`. */
    readonly extensions: Record<string, unknown> = {},
    /** Response headers, e.g. Retry-After. */
    readonly headers: Record<string, string> = {},
  ) {
    // A 4xx is an expected answer (a held seat refuses most of a stampede), never logged with a
    // stack: capturing one was the largest single cost of the 409 path.
    const stackTraceLimit = Error.stackTraceLimit;
    if (status < 500) Error.stackTraceLimit = 0;
    super(detail);
    Error.stackTraceLimit = stackTraceLimit;
    this.name = 'DomainError';
  }
}
