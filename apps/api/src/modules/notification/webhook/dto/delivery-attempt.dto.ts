/** One try at sending a delivery. */
export class DeliveryAttemptDto {
  /** 1 for the first try. */
  attempt: number;

  /** The receiver's HTTP status; null when it did not answer (timeout, refused, …). */
  statusCode: number | null;

  latencyMs: number;

  /** What went wrong; null when delivered. */
  error: string | null;

  at: string;
}
