/** What every problem+json answer carries; extensions such as `conflictingSeats` sit beside it. */
export interface ProblemFields {
  status: number;
  code: string;
  title: string;
  detail: string;
  extensions?: Record<string, unknown>;
}

/** The application/problem+json body for a problem at `instance` (the request's URL). */
export function problemBody(problem: ProblemFields, instance: string): Record<string, unknown> {
  return {
    type: `https://seatlock.dev/problems/${problem.code.toLowerCase()}`,
    title: problem.title,
    status: problem.status,
    detail: problem.detail,
    code: problem.code,
    instance,
    ...problem.extensions,
  };
}
