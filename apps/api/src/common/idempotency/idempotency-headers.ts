/** The request header that makes a POST safe to retry. */
export const IDEMPOTENCY_KEY_HEADER = 'Idempotency-Key';

/** Set on an answer that is a stored one, sent again for a retried request. */
export const IDEMPOTENT_REPLAYED_HEADER = 'Idempotent-Replayed';

export const MAX_IDEMPOTENCY_KEY_LENGTH = 255;

/** How long a completed answer is kept for replay. */
export const IDEMPOTENCY_RETENTION_HOURS = 24;
