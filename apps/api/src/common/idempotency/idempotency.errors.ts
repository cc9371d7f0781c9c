import { DomainError } from '../errors/domain.error';
import { IDEMPOTENCY_KEY_HEADER, MAX_IDEMPOTENCY_KEY_LENGTH } from './idempotency-headers';

/** Coded failures of the idempotency layer. */
export class IdempotencyError extends DomainError {
  static keyMissing(): IdempotencyError {
    return new IdempotencyError(
      'IDEMPOTENCY.KEY_REQUIRED',
      400,
      'Idempotency-Key required',
      `Send an ${IDEMPOTENCY_KEY_HEADER} header (e.g. a UUID) so that a retry cannot charge twice`,
      { errors: [{ field: IDEMPOTENCY_KEY_HEADER, messages: ['is required'] }] },
    );
  }

  static keyInvalid(): IdempotencyError {
    return new IdempotencyError(
      'IDEMPOTENCY.KEY_INVALID',
      400,
      'Invalid Idempotency-Key',
      `${IDEMPOTENCY_KEY_HEADER} must be 1 to ${MAX_IDEMPOTENCY_KEY_LENGTH} visible ASCII characters`,
      {
        errors: [
          {
            field: IDEMPOTENCY_KEY_HEADER,
            messages: [`must be 1 to ${MAX_IDEMPOTENCY_KEY_LENGTH} visible ASCII characters`],
          },
        ],
      },
    );
  }

  static keyReused(): IdempotencyError {
    return new IdempotencyError(
      'IDEMPOTENCY.KEY_REUSED',
      422,
      'Idempotency-Key reused',
      `This ${IDEMPOTENCY_KEY_HEADER} was used for a different request; use a new key for a new request`,
      { errors: [{ field: IDEMPOTENCY_KEY_HEADER, messages: ['already used with another body'] }] },
    );
  }

  static inFlight(): IdempotencyError {
    return new IdempotencyError(
      'IDEMPOTENCY.IN_FLIGHT',
      409,
      'Request in progress',
      `A request with this ${IDEMPOTENCY_KEY_HEADER} is still being processed; retry after Retry-After`,
      {},
      { 'Retry-After': '1' },
    );
  }
}
