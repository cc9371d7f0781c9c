import { Injectable, Logger } from '@nestjs/common';
import { ExponentialBackoff, handleWhen, retry, type RetryPolicy } from 'cockatiel';
import { AppConfigService } from '../../../config/app-config.service';
import {
  type AuthorizeRequest,
  type GatewayIntent,
  type GatewayIntentStatus,
  PaymentGateway,
} from './payment-gateway';
import {
  GatewayDeclinedError,
  GatewayRejectedError,
  GatewayUnavailableError,
} from './payment-gateway.errors';

/** The gateway's (Stripe-shaped) payment intent, as far as this adapter reads it. */
interface WireIntent {
  id: string;
  status: string;
  amount: number;
  amount_refunded?: number;
  metadata?: Record<string, string>;
  last_payment_error?: { decline_code?: string; code?: string; message?: string } | null;
}

interface WireError {
  error?: {
    type?: string;
    code?: string;
    decline_code?: string;
    message?: string;
    payment_intent?: WireIntent;
  };
}

/** A failure worth another attempt with the same idempotency key. */
class TransientFailure extends Error {
  constructor(
    message: string,
    readonly answered: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

const STATUSES: Record<string, GatewayIntentStatus> = {
  requires_capture: 'authorized',
  processing: 'processing',
  succeeded: 'captured',
  canceled: 'canceled',
  requires_payment_method: 'failed',
};

function toIntent(wire: WireIntent): GatewayIntent {
  return {
    id: wire.id,
    status: STATUSES[wire.status] ?? 'failed',
    amountCents: wire.amount,
    amountRefundedCents: wire.amount_refunded ?? 0,
    declineCode: wire.last_payment_error?.decline_code ?? wire.last_payment_error?.code,
    message: wire.last_payment_error?.message,
    metadata: wire.metadata,
  };
}

/**
 * The HTTP adapter for a Stripe-like gateway (the simulator in apps/gateway-sim). Every call has one
 * budget (GATEWAY_TIMEOUT_MS) for all its attempts; network errors, timeouts and 5xx are retried
 * with backoff using the same Idempotency-Key, which is what makes a retry safe (no second charge).
 */
@Injectable()
export class HttpPaymentGateway extends PaymentGateway {
  private readonly logger = new Logger(HttpPaymentGateway.name);
  private readonly baseUrl: string;
  private readonly budgetMs: number;
  private readonly retries: RetryPolicy;

  constructor(config: AppConfigService) {
    super();
    this.baseUrl = config.get('GATEWAY_URL').replace(/\/+$/, '');
    this.budgetMs = config.get('GATEWAY_TIMEOUT_MS');
    this.retries = retry(
      handleWhen((error) => error instanceof TransientFailure),
      {
        maxAttempts: 3,
        backoff: new ExponentialBackoff({ initialDelay: 100, maxDelay: 1000 }),
      },
    );
    this.retries.onRetry((event) => {
      const reason =
        'error' in event ? String((event.error as Error)?.message) : 'unexpected result';
      this.logger.warn(
        { attempt: event.attempt, delayMs: event.delay, reason },
        'Gateway call retried',
      );
    });
  }

  async authorize(request: AuthorizeRequest, signal?: AbortSignal): Promise<GatewayIntent> {
    const wire = await this.call<WireIntent>(
      '/v1/payment_intents',
      {
        amount: request.amountCents,
        currency: request.currency.toLowerCase(),
        payment_method: request.paymentMethod,
        capture_method: 'manual',
        metadata: request.metadata,
      },
      request.idempotencyKey,
      signal,
    );
    return toIntent(wire);
  }

  async capture(intentId: string, idempotencyKey: string, signal?: AbortSignal) {
    return toIntent(
      await this.call<WireIntent>(
        `/v1/payment_intents/${encodeURIComponent(intentId)}/capture`,
        {},
        idempotencyKey,
        signal,
      ),
    );
  }

  async void(intentId: string, idempotencyKey: string, signal?: AbortSignal) {
    return toIntent(
      await this.call<WireIntent>(
        `/v1/payment_intents/${encodeURIComponent(intentId)}/cancel`,
        {},
        idempotencyKey,
        signal,
      ),
    );
  }

  async refund(
    intentId: string,
    amountCents: number,
    idempotencyKey: string,
    signal?: AbortSignal,
  ) {
    const wire = await this.call<{ id: string; amount: number }>(
      '/v1/refunds',
      { payment_intent: intentId, amount: amountCents },
      idempotencyKey,
      signal,
    );
    return { id: wire.id, amountCents: wire.amount };
  }

  async retrieve(intentId: string, signal?: AbortSignal) {
    return toIntent(
      await this.call<WireIntent>(
        `/v1/payment_intents/${encodeURIComponent(intentId)}`,
        undefined,
        undefined,
        signal,
      ),
    );
  }

  private async call<T>(
    path: string,
    body: unknown,
    idempotencyKey: string | undefined,
    signal?: AbortSignal,
  ): Promise<T> {
    const budget = AbortSignal.timeout(this.budgetMs);
    const combined = signal ? AbortSignal.any([signal, budget]) : budget;
    try {
      return await this.retries.execute(
        () => this.attempt<T>(path, body, idempotencyKey, combined),
        combined,
      );
    } catch (error) {
      // The caller's own abort (its lock was lost) is the caller's to explain.
      if (signal?.aborted) throw signal.reason;
      if (error instanceof TransientFailure) {
        throw new GatewayUnavailableError(error.message, error.answered, { cause: error.cause });
      }
      if (budget.aborted) {
        throw new GatewayUnavailableError(
          `the gateway did not answer within ${this.budgetMs} ms`,
          false,
          { cause: error },
        );
      }
      throw error;
    }
  }

  private async attempt<T>(
    path: string,
    body: unknown,
    idempotencyKey: string | undefined,
    signal: AbortSignal,
  ): Promise<T> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (idempotencyKey) headers['idempotency-key'] = idempotencyKey;
    let response: Response;
    let text: string;
    try {
      response = await fetch(`${this.baseUrl}${path}`, {
        method: body === undefined ? 'GET' : 'POST',
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal,
      });
      text = await response.text();
    } catch (error) {
      if (signal.aborted) throw error;
      throw new TransientFailure(
        `the gateway is unreachable (${(error as Error).message})`,
        false,
        {
          cause: error,
        },
      );
    }
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : {};
    } catch {
      throw new TransientFailure(
        `the gateway answered ${response.status} with a body that is not JSON`,
        true,
      );
    }
    if (response.ok) return parsed as T;
    const failure = (parsed as WireError).error ?? {};
    // 409: the same idempotency key is being processed at the gateway right now.
    if (response.status >= 500 || response.status === 409 || response.status === 429) {
      throw new TransientFailure(
        `the gateway answered ${response.status}: ${failure.message ?? 'no message'}`,
        true,
      );
    }
    const intent = failure.payment_intent ? toIntent(failure.payment_intent) : null;
    if (response.status === 402) {
      throw new GatewayDeclinedError(
        failure.decline_code ?? failure.code ?? 'declined',
        failure.message ?? 'The card was declined',
        intent,
      );
    }
    throw new GatewayRejectedError(
      response.status,
      failure.code ?? 'invalid_request',
      failure.message ?? `the gateway answered ${response.status}`,
      intent,
    );
  }
}
