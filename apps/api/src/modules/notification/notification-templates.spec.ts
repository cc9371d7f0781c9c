import { NotificationTemplates } from './notification-templates';

const booking = {
  id: '6f1c1a52-1f5e-4a57-9d53-0c1f2b3a4d5e',
  status: 'held',
  eventId: '0b3a9b1e-8f3f-4f8e-9d2b-1c2d3e4f5a6b',
  seats: ['A1', 'A2'],
  amountCents: 8400,
  currency: 'EUR',
  expiresAt: '2027-06-01T19:35:00.000Z',
};

describe('NotificationTemplates', () => {
  it('names the seats, the amount and the status', () => {
    const held = NotificationTemplates.render('booking.held', { booking });

    expect(held).toEqual({
      bookingId: booking.id,
      title: 'Seats held',
      body: expect.stringContaining('A1, A2 held for you (84.00 EUR)'),
    });
    expect(held?.body).toContain('Booking status: held.');
  });

  it('says a voided payment lost its seat, and why', () => {
    const voided = NotificationTemplates.render('payment.voided', {
      booking: { ...booking, status: 'expired' },
      payment: {
        payment: {
          amountCents: 8400,
          currency: 'EUR',
          failureCode: 'seat_lost',
          failureMessage: 'Not booked: the hold expired',
        },
      },
    });

    expect(voided?.title).toBe('Payment voided: seat lost');
    expect(voided?.body).toContain(
      'voided because the seat was lost (Not booked: the hold expired)',
    );
    expect(voided?.body).toContain('84.00 EUR');
    expect(voided?.body).toContain('Booking status: expired.');
  });

  it('has nothing to show for topics it does not know', () => {
    expect(NotificationTemplates.render('catalog.updated', {})).toBeNull();
  });

  it('refuses a payload it cannot render rather than show a half-empty text', () => {
    expect(() => NotificationTemplates.render('booking.held', { booking: { id: 'x' } })).toThrow(
      /no usable booking/,
    );
    expect(() => NotificationTemplates.render('payment.refunded', { booking })).toThrow(
      /no usable payment/,
    );
  });
});
