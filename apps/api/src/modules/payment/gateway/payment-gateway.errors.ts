import type { GatewayIntent } from './payment-gateway';

/** The card was refused; `intent` is the failed authorization. Final: retrying will not help. */
export class GatewayDeclinedError extends Error {
  constructor(
    readonly declineCode: string,
    readonly reason: string,
    readonly intent: GatewayIntent | null,
  ) {
    super(`declined: ${declineCode}: ${reason}`);
    this.name = 'GatewayDeclinedError';
  }
}

/**
 * The gateway could not be asked or did not answer usefully within the budget (network error,
 * timeout, 5xx after retries). The outcome of the call is unknown; a retry with the same idempotency
 * key is safe. `answered` tells a 5xx (502 for our caller) from silence (503).
 */
export class GatewayUnavailableError extends Error {
  constructor(
    message: string,
    readonly answered: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'GatewayUnavailableError';
  }
}

/** The gateway refused the request as it stands (4xx other than a decline), e.g. a wrong state. */
export class GatewayRejectedError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** The intent as it is, when the gateway said (wrong-state refusals carry it). */
    readonly intent: GatewayIntent | null,
  ) {
    super(message);
    this.name = 'GatewayRejectedError';
  }
}
