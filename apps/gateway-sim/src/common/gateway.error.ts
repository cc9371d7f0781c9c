import type { GatewayResponse } from './gateway-response';

/** The `error` member of a failed answer, shaped like Stripe's. */
export interface GatewayErrorBody {
  type: 'invalid_request_error' | 'card_error' | 'idempotency_error' | 'api_error';
  code?: string;
  decline_code?: string;
  message: string;
  param?: string;
  payment_intent?: unknown;
}

/**
 * An expected failure with a status and a Stripe-like body. Services throw it; the filter (or the
 * idempotency layer, which stores it) turns it into `{error: {...}}`.
 */
export class GatewayError extends Error {
  constructor(
    readonly status: number,
    readonly body: GatewayErrorBody,
  ) {
    super(body.message);
  }

  toResponse(): GatewayResponse {
    return { status: this.status, body: { error: this.body } };
  }

  static invalidRequest(message: string, param?: string, code = 'parameter_invalid'): GatewayError {
    return new GatewayError(400, { type: 'invalid_request_error', code, message, param });
  }

  static missing(resource: string, id: string, param?: string): GatewayError {
    return new GatewayError(404, {
      type: 'invalid_request_error',
      code: 'resource_missing',
      message: `No such ${resource}: '${id}'`,
      param,
    });
  }

  /** The intent is not in a status that allows `action`; the body carries the intent as it is. */
  static unexpectedState(action: string, intent: { status: string }): GatewayError {
    return new GatewayError(400, {
      type: 'invalid_request_error',
      code: 'payment_intent_unexpected_state',
      message: `You cannot ${action} this PaymentIntent because it has a status of ${intent.status}.`,
      payment_intent: intent,
    });
  }

  static idempotency(message: string): GatewayError {
    return new GatewayError(400, { type: 'idempotency_error', message });
  }

  /** A simulated outage: 5xx answers are never stored, so a retry runs again. */
  static transient(): GatewayError {
    return new GatewayError(500, {
      type: 'api_error',
      message: 'A transient error occurred (simulated); retry with the same Idempotency-Key.',
    });
  }
}
