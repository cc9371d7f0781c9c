import { unixSeconds } from '../common/new-id';

export type PaymentIntentStatus =
  'requires_payment_method' | 'processing' | 'requires_capture' | 'succeeded' | 'canceled';

/** A `gateway_sim.payment_intents` row. */
export interface PaymentIntentRow {
  id: string;
  amount: number;
  amount_capturable: number;
  amount_received: number;
  amount_refunded: number;
  currency: string;
  status: PaymentIntentStatus;
  payment_method: string;
  capture_method: string;
  metadata: Record<string, string>;
  last_payment_error: Record<string, unknown> | null;
  canceled_at: Date | null;
  created_at: Date;
}

/** The columns every query answers, in the order the API shows them. */
export const INTENT_COLUMNS =
  'id, amount, amount_capturable, amount_received, amount_refunded, currency, status, ' +
  'payment_method, capture_method, metadata, last_payment_error, canceled_at, created_at';

/** The API representation (Stripe's shape, plus `amount_refunded`). */
export interface PaymentIntent {
  id: string;
  object: 'payment_intent';
  amount: number;
  amount_capturable: number;
  amount_received: number;
  amount_refunded: number;
  currency: string;
  status: PaymentIntentStatus;
  payment_method: string;
  capture_method: string;
  metadata: Record<string, string>;
  created: number;
  canceled_at: number | null;
  last_payment_error: Record<string, unknown> | null;
}

export function toPaymentIntent(row: PaymentIntentRow): PaymentIntent {
  return {
    id: row.id,
    object: 'payment_intent',
    amount: row.amount,
    amount_capturable: row.amount_capturable,
    amount_received: row.amount_received,
    amount_refunded: row.amount_refunded,
    currency: row.currency,
    status: row.status,
    payment_method: row.payment_method,
    capture_method: row.capture_method,
    metadata: row.metadata,
    created: unixSeconds(row.created_at),
    canceled_at: row.canceled_at ? unixSeconds(row.canceled_at) : null,
    last_payment_error: row.last_payment_error,
  };
}
