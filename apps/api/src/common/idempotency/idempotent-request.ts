import { createHash } from 'node:crypto';
import { createParamDecorator, type ExecutionContext } from '@nestjs/common';
import type { IdempotencyClaim } from './idempotency.repository';

/** Same JSON with keys sorted, so that key order does not make a retry look like another request. */
function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.keys(value)
      .sort()
      .map((key) => [key, canonical((value as Record<string, unknown>)[key])]),
  );
}

/** What makes two requests "the same request" for one key: method, path and body. */
export function requestFingerprint(method: string, url: string, body: unknown): string {
  return createHash('sha256')
    .update(JSON.stringify([method, url, canonical(body ?? null)]))
    .digest('hex');
}

/** What a claim found instead of a free key. */
export type RefusedClaim = Exclude<IdempotencyClaim, { kind: 'claimed' }>;

/** Thrown by a handler whose claim found the key taken: the interceptor answers from `claim`. */
export class IdempotencyRefused extends Error {
  constructor(readonly claim: RefusedClaim) {
    super(`idempotency key not claimed: ${claim.kind}`);
    this.name = 'IdempotencyRefused';
  }
}

/**
 * An idempotent request as the interceptor checked it. The handler claims the key in its own first
 * statement and may store its answer in its own last one (`answered`), so neither costs a round
 * trip of its own; whatever the handler leaves undone, the interceptor does.
 */
export class IdempotentRequest {
  /** Set once the handler's first statement claimed the key. */
  claimed = false;
  /** Set once the handler's last statement stored the answer. */
  answered = false;

  constructor(
    readonly customerId: string,
    readonly key: string,
    readonly fingerprint: string,
    /** Past this a claim is surely abandoned, and another request may take the key over. */
    readonly leaseMs: number,
    /** The route's success status, stored with a success answer. */
    readonly successStatus: number,
  ) {}

  /** The handler's first statement claimed the key: the request is this one's to answer. */
  markClaimed(): void {
    this.claimed = true;
  }

  /** The key was not this request's: the interceptor answers from the claim instead. */
  refuse(claim: RefusedClaim): never {
    throw new IdempotencyRefused(claim);
  }
}

export const IDEMPOTENT_REQUEST = 'seatlock:idempotent-request';

/** The request's IdempotentRequest, set by the interceptor of an @Idempotent() route. */
export const CurrentIdempotentRequest = createParamDecorator(
  (_data: unknown, context: ExecutionContext): IdempotentRequest =>
    context.switchToHttp().getRequest<Record<string, IdempotentRequest>>()[IDEMPOTENT_REQUEST],
);
