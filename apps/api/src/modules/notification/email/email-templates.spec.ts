import { EmailTemplates } from './email-templates';

const booking = {
  id: '6f1c1a52-1f5e-4a57-9d53-0c1f2b3a4d5e',
  status: 'held',
  eventId: '0b3a9b1e-8f3f-4f8e-9d2b-1c2d3e4f5a6b',
  seats: ['A1', 'A2'],
  amountCents: 8400,
  currency: 'EUR',
  expiresAt: '2027-06-01T19:35:00.000Z',
};

function payment(status: string, failure: { code?: string; message?: string } = {}) {
  return {
    payment: {
      id: '9a8b7c6d-0000-4000-8000-000000000001',
      bookingId: booking.id,
      status,
      amountCents: 8400,
      refundedCents: status === 'refunded' ? 8400 : 0,
      currency: 'EUR',
      failureCode: failure.code ?? null,
      failureMessage: failure.message ?? null,
    },
  };
}

interface TopicCase {
  topic: string;
  status: string;
  title: string;
  payment?: ReturnType<typeof payment>;
}

/** Every topic with the booking status it carries, and the payment for payment topics. */
const TOPICS: TopicCase[] = [
  { topic: 'booking.held', status: 'held', title: 'Seats held' },
  { topic: 'booking.extended', status: 'held', title: 'Hold extended' },
  { topic: 'booking.confirmed', status: 'confirmed', title: 'Booking confirmed' },
  { topic: 'booking.released', status: 'released', title: 'Hold released' },
  { topic: 'booking.expired', status: 'expired', title: 'Hold expired' },
  { topic: 'booking.cancelled', status: 'cancelled', title: 'Booking cancelled' },
  {
    topic: 'payment.declined',
    status: 'held',
    title: 'Payment declined',
    payment: payment('failed', { code: 'card_declined', message: 'Your card was declined.' }),
  },
  {
    topic: 'payment.voided',
    status: 'expired',
    title: 'Payment voided: seat lost',
    payment: payment('voided', { code: 'seat_lost', message: 'Not booked: the hold expired' }),
  },
  {
    topic: 'payment.refunded',
    status: 'cancelled',
    title: 'Payment refunded',
    payment: payment('refunded'),
  },
];

describe('EmailTemplates', () => {
  it.each(TOPICS)(
    '$topic: the subject names what happened and the seats; the text the seats, amount and status',
    ({ topic, status, title, payment: paid }) => {
      const email = EmailTemplates.render(topic, {
        booking: { ...booking, status },
        ...(paid ? { payment: paid } : {}),
      });

      expect(email).not.toBeNull();
      expect(email!.subject).toBe(`${title} (A1, A2)`);
      const lines = email!.text.split('\n');
      expect(lines[0]).toBe(title);
      expect(lines).toContain(`Booking: ${booking.id}`);
      expect(lines).toContain('Seats:   A1, A2');
      expect(lines).toContain('Amount:  84.00 EUR');
      expect(lines).toContain(`Status:  ${status}`);
      // Plain ASCII, so no client shows mangled characters and headers need no encoding.
      expect(email!.subject + email!.text).toMatch(/^[\x20-\x7e\n]*$/);
    },
  );

  it('the text of a held booking reads like the in-app one', () => {
    const email = EmailTemplates.render('booking.held', { booking })!;

    expect(email.text).toBe(
      [
        'Seats held',
        '',
        'A1, A2 held for you (84.00 EUR) until 2027-06-01T19:35:00.000Z; pay to confirm. Booking status: held.',
        '',
        'Booking: 6f1c1a52-1f5e-4a57-9d53-0c1f2b3a4d5e',
        'Seats:   A1, A2',
        'Amount:  84.00 EUR',
        'Status:  held',
        '',
        '-- ',
        'Seatlock. This message was sent automatically; replies are not read.',
        '',
      ].join('\n'),
    );
  });

  it('a voided payment says the seat was lost, and why (the payment failureMessage)', () => {
    const email = EmailTemplates.render('payment.voided', {
      booking: { ...booking, seats: ['B1'], amountCents: 4200, status: 'expired' },
      payment: payment('voided', { code: 'seat_lost', message: 'Not booked: the hold expired' }),
    })!;

    expect(email.subject).toBe('Payment voided: seat lost (B1)');
    expect(email.text).toContain('voided because the seat was lost (Not booked: the hold expired)');
    expect(email.text).toContain('nothing was charged');
    expect(email.text).toContain('Payment: 84.00 EUR, voided');
    expect(email.text.split('\n')).toContain('Reason:  Not booked: the hold expired');
    expect(email.text.split('\n')).toContain('Status:  expired');
  });

  it('a voided payment without a message gives its failure code as the reason', () => {
    const email = EmailTemplates.render('payment.voided', {
      booking: { ...booking, status: 'expired' },
      payment: payment('voided', { code: 'seat_lost' }),
    })!;

    expect(email.text.split('\n')).toContain('Reason:  seat_lost');
  });

  it('a refund with no failure has no reason line', () => {
    const email = EmailTemplates.render('payment.refunded', {
      booking: { ...booking, status: 'cancelled' },
      payment: payment('refunded'),
    })!;

    expect(email.text).toContain('84.00 EUR for A1, A2 refunded.');
    expect(email.text).not.toContain('Reason:');
  });

  it('has no email for topics outside the eight', () => {
    expect(EmailTemplates.render('catalog.updated', { booking })).toBeNull();
  });

  it('refuses a payload it cannot render rather than send a half-empty email', () => {
    expect(() => EmailTemplates.render('booking.held', { booking: { id: 'x' } })).toThrow(
      /no usable booking/,
    );
    expect(() => EmailTemplates.render('payment.voided', { booking })).toThrow(/no usable payment/);
  });
});
