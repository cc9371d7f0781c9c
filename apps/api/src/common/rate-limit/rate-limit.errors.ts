import { DomainError } from '../errors/domain.error';

/** 429 with Retry-After: the caller's budget for this window is spent. */
export class RateLimitError extends DomainError {
  static exceeded(retryAfterSeconds: number, detail: string): RateLimitError {
    return new RateLimitError(
      'REQUEST.RATE_LIMITED',
      429,
      'Too many requests',
      detail,
      {},
      { 'Retry-After': String(Math.max(1, retryAfterSeconds)) },
    );
  }
}
