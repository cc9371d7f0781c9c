/** Where an authorization stands at the gateway, in the payment module's words. */
export type GatewayIntentStatus = 'authorized' | 'processing' | 'captured' | 'canceled' | 'failed';

export interface GatewayIntent {
  id: string;
  status: GatewayIntentStatus;
  amountCents: number;
  amountRefundedCents: number;
  /** Why it failed (a decline), when it did. */
  declineCode?: string;
  message?: string;
  /** What we attached at authorization (`paymentId`). */
  metadata?: Record<string, string>;
}

export interface AuthorizeRequest {
  amountCents: number;
  currency: string;
  paymentMethod: string;
  metadata: Record<string, string>;
  /** The gateway's own idempotency key: a retry returns the first authorization, never a second. */
  idempotencyKey: string;
}

/**
 * The payment module's port to a card gateway (manual capture). The adapter owns timeouts and safe
 * retries; `signal` aborts a call (the payment lock was lost). Failures are typed in
 * payment-gateway.errors.ts.
 */
export abstract class PaymentGateway {
  abstract authorize(request: AuthorizeRequest, signal?: AbortSignal): Promise<GatewayIntent>;
  abstract capture(
    intentId: string,
    idempotencyKey: string,
    signal?: AbortSignal,
  ): Promise<GatewayIntent>;
  abstract void(
    intentId: string,
    idempotencyKey: string,
    signal?: AbortSignal,
  ): Promise<GatewayIntent>;
  abstract refund(
    intentId: string,
    amountCents: number,
    idempotencyKey: string,
    signal?: AbortSignal,
  ): Promise<{ id: string; amountCents: number }>;
  abstract retrieve(intentId: string, signal?: AbortSignal): Promise<GatewayIntent>;
}
