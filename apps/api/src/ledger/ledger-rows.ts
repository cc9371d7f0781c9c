/**
 * The rows the ledger check reads (from PostgreSQL and the gateway) and the words the rules use
 * for them: amounts, currencies, what an intent's state means for the money.
 */

/** Amounts in minor units; PostgreSQL's bigint arrives as a string, so every form is accepted. */
export type Cents = string | number | bigint;

export type IntentStatus =
  'requires_payment_method' | 'processing' | 'requires_capture' | 'succeeded' | 'canceled';

/** A payment intent as the gateway answers it (the fields the rules read). */
export interface LedgerIntent {
  id: string;
  amount: number;
  amount_received: number;
  amount_refunded: number;
  currency: string;
  status: IntentStatus;
  metadata?: Record<string, string> | null;
}

export interface LedgerBooking {
  id: string;
  customerId: string;
  eventId: string;
  status: string;
  seatLabels: string[];
  amountCents: Cents;
  currency: string;
}

export interface LedgerSeat {
  eventId: string;
  label: string;
  status: string;
  bookingId: string | null;
}

export interface LedgerPayment {
  id: string;
  bookingId: string;
  status: string;
  nextAction: string | null;
  amountCents: Cents;
  refundedCents: Cents;
  currency: string;
  gatewayIntentId: string | null;
}

export interface LedgerRows {
  intents: LedgerIntent[];
  bookings: LedgerBooking[];
  seats: LedgerSeat[];
  payments: LedgerPayment[];
}

export function normalizeId(id: string): string {
  return id.trim().toLowerCase();
}

export function metadataValue(intent: LedgerIntent, key: string): string | undefined {
  const value = intent.metadata?.[key];
  return typeof value === 'string' && value.length > 0 ? value : undefined;
}

export function sameCents(a: Cents, b: Cents): boolean {
  return BigInt(a) === BigInt(b);
}

export function sameCurrency(a: string, b: string): boolean {
  return a.trim().toUpperCase() === b.trim().toUpperCase();
}

export function money(cents: Cents, currency: string): string {
  return `${String(cents)} ${currency.trim().toUpperCase()} cents`;
}

export function seatName(eventId: string, label: string): string {
  return `seat ${label} of event ${eventId}`;
}

/** Captured and not (fully) refunded: the customer's money sits with us. */
export function isCapturedUnrefunded(intent: LedgerIntent): boolean {
  return intent.status === 'succeeded' && intent.amount_refunded < intent.amount_received;
}

/** Money is held (authorized) or kept (captured, not fully refunded) for this intent. */
export function holdsMoney(intent: LedgerIntent): boolean {
  return (
    intent.status === 'requires_capture' ||
    intent.status === 'processing' ||
    isCapturedUnrefunded(intent)
  );
}

export function describeIntent(intent: LedgerIntent): string {
  const received = money(intent.amount_received, intent.currency);
  switch (intent.status) {
    case 'succeeded':
      if (intent.amount_refunded === 0) return `captured (${received}, nothing refunded)`;
      return `captured and refunded ${money(intent.amount_refunded, intent.currency)} of ${received}`;
    case 'canceled':
      return 'canceled (voided)';
    case 'requires_capture':
      return 'authorized but not captured (requires_capture)';
    case 'processing':
      return 'still processing';
    case 'requires_payment_method':
      return 'declined (requires_payment_method)';
    default:
      return String(intent.status);
  }
}

/** The payment statuses that agree with an intent's state at the gateway. */
export function agreeingPaymentStatuses(intent: LedgerIntent): string[] {
  switch (intent.status) {
    case 'succeeded':
      return intent.amount_refunded > 0 ? ['refunded'] : ['captured'];
    case 'canceled':
      return ['voided'];
    case 'requires_capture':
    case 'processing':
      return ['pending', 'authorized'];
    default:
      return ['pending', 'failed'];
  }
}
