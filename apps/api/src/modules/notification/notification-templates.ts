import { formatAmount, NOTIFICATION_TOPICS } from './notification-topics';

/** What the in-app channel shows for one outbox message. */
export interface RenderedNotification {
  bookingId: string | null;
  title: string;
  body: string;
}

interface BookingFacts {
  id: string;
  status: string;
  seats: string[];
  amountCents: number;
  currency: string;
  expiresAt?: string;
}

interface PaymentFacts {
  amountCents: number;
  currency: string;
  failureCode?: string | null;
  failureMessage?: string | null;
}

/**
 * Short plain texts per outbox topic, from the message's payload (`{booking, payment?: {payment}}`).
 * A payload that lacks what its topic needs throws: the dispatch fails, is retried and ends in the
 * dead letter, where an operator sees it, rather than the customer seeing a half-empty text.
 */
export class NotificationTemplates {
  /** null: this topic has nothing to show in the app. */
  static render(topic: string, payload: Record<string, unknown>): RenderedNotification | null {
    if (!TOPICS.has(topic)) return null;
    const booking = bookingOf(payload, topic);
    const seats = booking.seats.join(', ');
    const amount = formatAmount(booking.amountCents, booking.currency);
    const status = `Booking status: ${booking.status}.`;
    const text = (title: string, body: string): RenderedNotification => ({
      bookingId: booking.id,
      title,
      body: `${body} ${status}`,
    });
    switch (topic) {
      case 'booking.held':
        return text(
          'Seats held',
          `${seats} held for you (${amount})${booking.expiresAt ? ` until ${booking.expiresAt}` : ''}; pay to confirm.`,
        );
      case 'booking.extended':
        return text(
          'Hold extended',
          `Your hold on ${seats} now lasts${booking.expiresAt ? ` until ${booking.expiresAt}` : ' longer'}; pay to confirm.`,
        );
      case 'booking.confirmed':
        return text('Booking confirmed', `${seats} booked and paid (${amount}).`);
      case 'booking.released':
        return text('Hold released', `You released ${seats}; nothing was charged.`);
      case 'booking.expired':
        return text(
          'Hold expired',
          `Your hold on ${seats} expired before payment; the seats are free again.`,
        );
      case 'booking.cancelled':
        return text(
          'Booking cancelled',
          `Your booking of ${seats} (${amount}) was cancelled; the payment is refunded.`,
        );
      case 'payment.declined': {
        const payment = paymentOf(payload, topic);
        return text(
          'Payment declined',
          `Your payment of ${formatAmount(payment.amountCents, payment.currency)} for ${seats} was declined: ${reason(payment, 'no reason given')}. The seats stay held until the hold expires; you can try another card.`,
        );
      }
      case 'payment.voided': {
        const payment = paymentOf(payload, topic);
        return text(
          'Payment voided: seat lost',
          `Your payment of ${formatAmount(payment.amountCents, payment.currency)} for ${seats} was voided because the seat was lost (${reason(payment, 'the hold ended before the payment')}); nothing was charged.`,
        );
      }
      default: {
        const payment = paymentOf(payload, topic);
        const why =
          payment.failureCode === 'seat_lost'
            ? ` because the seat was lost (${reason(payment, '')})`
            : '';
        return text(
          'Payment refunded',
          `${formatAmount(payment.amountCents, payment.currency)} for ${seats} refunded${why}.`,
        );
      }
    }
  }
}

const TOPICS = new Set<string>(NOTIFICATION_TOPICS);

function reason(payment: PaymentFacts, fallback: string): string {
  return payment.failureMessage?.trim() || payment.failureCode || fallback;
}

function bookingOf(payload: Record<string, unknown>, topic: string): BookingFacts {
  const booking = payload.booking as Partial<BookingFacts> | undefined;
  if (
    !booking ||
    typeof booking.id !== 'string' ||
    typeof booking.status !== 'string' ||
    !Array.isArray(booking.seats) ||
    !Number.isFinite(Number(booking.amountCents)) ||
    typeof booking.currency !== 'string'
  ) {
    throw new Error(
      `${topic} payload has no usable booking (id, status, seats, amountCents, currency)`,
    );
  }
  return booking as BookingFacts;
}

function paymentOf(payload: Record<string, unknown>, topic: string): PaymentFacts {
  const payment = (payload.payment as { payment?: Partial<PaymentFacts> } | undefined)?.payment;
  if (
    !payment ||
    !Number.isFinite(Number(payment.amountCents)) ||
    typeof payment.currency !== 'string'
  ) {
    throw new Error(`${topic} payload has no usable payment (amountCents, currency)`);
  }
  return payment as PaymentFacts;
}
