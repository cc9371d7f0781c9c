/** Every transition the customer hears about: the outbox topics, also the webhook event types. */
export const NOTIFICATION_TOPICS = [
  'booking.held',
  'booking.extended',
  'booking.confirmed',
  'booking.released',
  'booking.expired',
  'booking.cancelled',
  'payment.declined',
  'payment.voided',
  'payment.refunded',
] as const;

/** Minor units to "84.00 EUR" (every currency the catalog sells has two decimals). */
export function formatAmount(cents: number, currency: string): string {
  return `${(Number(cents) / 100).toFixed(2)} ${currency}`;
}
