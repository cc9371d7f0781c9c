import { NotificationTemplates } from '../notification-templates';
import { formatAmount } from '../notification-topics';

/** One email: plain text only, so it reads the same in every client and in a terminal. */
export interface RenderedEmail {
  subject: string;
  text: string;
}

interface BookingFacts {
  id: string;
  status: string;
  seats: string[];
  amountCents: number;
  currency: string;
}

interface PaymentFacts {
  amountCents: number;
  currency: string;
  status?: string;
  failureCode?: string | null;
  failureMessage?: string | null;
}

/**
 * The email for an outbox message: the in-app title and text (one wording for both channels, and
 * their payload checks), followed by the facts a customer looks for at a glance: seats, amount,
 * status and, for a payment that went wrong, the reason.
 */
export class EmailTemplates {
  /** null: no email for this topic. Throws, as NotificationTemplates does, on an unusable payload. */
  static render(topic: string, payload: Record<string, unknown>): RenderedEmail | null {
    const notification = NotificationTemplates.render(topic, payload);
    if (!notification) return null;
    // NotificationTemplates has checked the booking (and the payment, for payment topics).
    const booking = payload.booking as BookingFacts;
    const payment = topic.startsWith('payment.')
      ? (payload.payment as { payment: PaymentFacts }).payment
      : null;
    const seats = booking.seats.join(', ');
    const facts: [string, string][] = [
      ['Booking', booking.id],
      ['Seats', seats],
      ['Amount', formatAmount(booking.amountCents, booking.currency)],
      ['Status', booking.status],
    ];
    if (payment) {
      facts.push([
        'Payment',
        `${formatAmount(payment.amountCents, payment.currency)}${payment.status ? `, ${payment.status}` : ''}`,
      ]);
      const reason = payment.failureMessage?.trim() || payment.failureCode;
      if (reason) facts.push(['Reason', reason]);
    }
    const width = Math.max(...facts.map(([label]) => label.length)) + 1;
    return {
      subject: `${notification.title} (${seats})`,
      text: [
        notification.title,
        '',
        notification.body,
        '',
        ...facts.map(([label, value]) => `${`${label}:`.padEnd(width)} ${value}`),
        '',
        '-- ',
        'Seatlock. This message was sent automatically; replies are not read.',
        '',
      ].join('\n'),
    };
  }
}
