/** Longest wait between two dispatch attempts, however many failed. */
export const MAX_RETRY_DELAY_MS = 3_600_000;

/**
 * Delay before attempt `failedAttempts + 1`: base × 2^(failedAttempts − 1), capped, with "equal
 * jitter" (half fixed, half random) so that messages failing together do not retry in lockstep yet
 * each wait still grows.
 */
export function retryDelayMs(
  failedAttempts: number,
  baseMs: number,
  random = Math.random(),
): number {
  const exponential = Math.min(MAX_RETRY_DELAY_MS, baseMs * 2 ** Math.max(0, failedAttempts - 1));
  return Math.round(exponential / 2 + (exponential / 2) * random);
}
