import {
  evaluateLedger,
  type LedgerBooking,
  type LedgerIntent,
  type LedgerPayment,
  type LedgerRows,
  type LedgerSeat,
} from './ledger-check';

const EVENT = 'event-1';
const CUSTOMER = 'customer-1';

function booking(id: string, status: string, seatLabels: string[], amountCents = 10000) {
  const row: LedgerBooking = {
    id,
    customerId: CUSTOMER,
    eventId: EVENT,
    status,
    seatLabels,
    amountCents: String(amountCents),
    currency: 'EUR',
  };
  return row;
}

function intent(
  id: string,
  bookingId: string,
  paymentId: string,
  state: Pick<LedgerIntent, 'status'> & Partial<LedgerIntent>,
): LedgerIntent {
  return {
    id,
    amount: 10000,
    amount_received: state.status === 'succeeded' ? 10000 : 0,
    amount_refunded: 0,
    currency: 'eur',
    metadata: { bookingId, paymentId, customerId: CUSTOMER },
    ...state,
  };
}

function payment(
  id: string,
  bookingId: string,
  status: string,
  gatewayIntentId: string | null,
  extra: Partial<LedgerPayment> = {},
): LedgerPayment {
  return {
    id,
    bookingId,
    status,
    nextAction: null,
    amountCents: '10000',
    refundedCents: status === 'refunded' ? '10000' : '0',
    currency: 'EUR',
    gatewayIntentId,
    ...extra,
  };
}

function seat(label: string, status: string, bookingId: string | null): LedgerSeat {
  return { eventId: EVENT, label, status, bookingId };
}

/**
 * A settled ledger with every happy ending: a confirmed booking paid once, an expired hold whose
 * authorization was voided, a confirmed booking cancelled and refunded, a capture that came too
 * late and was refunded, and a declined card.
 */
function cleanLedger(): LedgerRows {
  return {
    bookings: [
      booking('confirmed-1', 'confirmed', ['A1', 'A2']),
      booking('expired-1', 'expired', ['A3']),
      booking('cancelled-1', 'cancelled', ['A4']),
      booking('late-1', 'expired', ['A5']),
      booking('held-1', 'held', ['B1']),
    ],
    intents: [
      intent('pi_confirmed', 'confirmed-1', 'pay-confirmed', { status: 'succeeded' }),
      intent('pi_voided', 'expired-1', 'pay-voided', { status: 'canceled' }),
      intent('pi_cancelled', 'cancelled-1', 'pay-cancelled', {
        status: 'succeeded',
        amount_refunded: 10000,
      }),
      intent('pi_late', 'late-1', 'pay-late', { status: 'succeeded', amount_refunded: 10000 }),
      intent('pi_declined', 'held-1', 'pay-declined', { status: 'requires_payment_method' }),
      // Another application's intent: no booking in its metadata, so not ours to judge.
      { ...intent('pi_foreign', '', '', { status: 'requires_capture' }), metadata: {} },
    ],
    payments: [
      payment('pay-confirmed', 'confirmed-1', 'captured', 'pi_confirmed'),
      payment('pay-voided', 'expired-1', 'voided', 'pi_voided'),
      payment('pay-cancelled', 'cancelled-1', 'refunded', 'pi_cancelled'),
      payment('pay-late', 'late-1', 'refunded', 'pi_late'),
      payment('pay-declined', 'held-1', 'failed', 'pi_declined'),
    ],
    seats: [
      seat('A1', 'booked', 'confirmed-1'),
      seat('A2', 'booked', 'confirmed-1'),
      seat('A3', 'free', null),
      seat('A4', 'free', null),
      seat('A5', 'free', null),
      seat('B1', 'held', 'held-1'),
    ],
  };
}

function find<T extends { id: string }>(rows: T[], id: string): T {
  const row = rows.find((r) => r.id === id);
  if (!row) throw new Error(`no row ${id}`);
  return row;
}

function violationsOf(rows: LedgerRows, bookingIds?: string[]): string[] {
  return evaluateLedger(rows, bookingIds).violations;
}

describe('evaluateLedger', () => {
  it('finds nothing wrong in a settled ledger and counts what it checked', () => {
    expect(evaluateLedger(cleanLedger())).toEqual({
      violations: [],
      intents: 5,
      capturedIntents: 1,
      bookings: 5,
      confirmedBookings: 1,
      bookedSeats: 2,
      payments: 5,
      unknownBookingIds: [],
    });
  });

  describe('rule 1: a captured, unrefunded intent belongs to one confirmed booking', () => {
    it('reports a capture kept for a booking that is not confirmed', () => {
      const rows = cleanLedger();
      find(rows.intents, 'pi_late').amount_refunded = 0;
      find(rows.payments, 'pay-late').status = 'captured';
      expect(violationsOf(rows)).toEqual([
        'intent pi_late of booking late-1 keeps 10000 EUR cents but the booking is expired, not ' +
          'confirmed; the capture must be refunded in full',
      ]);
    });

    it('reports a partly refunded capture of a booking that is not confirmed', () => {
      const rows = cleanLedger();
      find(rows.intents, 'pi_late').amount_refunded = 4000;
      find(rows.payments, 'pay-late').refundedCents = '4000';
      expect(violationsOf(rows)).toEqual([
        expect.stringContaining('intent pi_late of booking late-1 keeps 6000 EUR cents'),
      ]);
    });

    it('reports a capture for a booking that does not exist', () => {
      const rows = cleanLedger();
      rows.intents.push(
        intent('pi_ghost', 'no-such-booking', 'pay-ghost', { status: 'succeeded' }),
      );
      rows.payments.push(payment('pay-ghost', 'no-such-booking', 'captured', 'pi_ghost'));
      expect(violationsOf(rows)).toEqual([
        'intent pi_ghost of booking no-such-booking keeps 10000 EUR cents but the booking does ' +
          'not exist; it must be refunded',
      ]);
    });

    it('reports an amount that differs from the booking, also after a partial refund', () => {
      const rows = cleanLedger();
      find(rows.bookings, 'confirmed-1').amountCents = '12000';
      expect(violationsOf(rows)).toEqual([
        'intent pi_confirmed of booking confirmed-1 keeps 10000 EUR cents but the booking costs ' +
          '12000 EUR cents',
      ]);

      const refunded = cleanLedger();
      find(refunded.intents, 'pi_confirmed').amount_refunded = 1;
      expect(violationsOf(refunded)).toEqual(
        expect.arrayContaining([
          'intent pi_confirmed of booking confirmed-1 keeps 9999 EUR cents but the booking costs ' +
            '10000 EUR cents',
        ]),
      );
    });

    it('reports a currency that differs from the booking, and compares currencies in any case', () => {
      const rows = cleanLedger();
      find(rows.bookings, 'confirmed-1').currency = 'USD';
      expect(violationsOf(rows)).toEqual([
        'intent pi_confirmed of booking confirmed-1 is in EUR but the booking is in USD',
      ]);

      const lower = cleanLedger();
      find(lower.bookings, 'confirmed-1').currency = 'eur';
      expect(violationsOf(lower)).toEqual([]);
    });

    it("reports a capture paid by another customer than the booking's", () => {
      const rows = cleanLedger();
      find(rows.intents, 'pi_confirmed').metadata = {
        bookingId: 'confirmed-1',
        paymentId: 'pay-confirmed',
        customerId: 'customer-2',
      };
      expect(violationsOf(rows)).toEqual([
        'intent pi_confirmed of booking confirmed-1 was paid by customer customer-2 but the ' +
          'booking belongs to customer customer-1',
      ]);
    });

    it('reports a confirmed booking charged twice, but not one whose second charge was refunded', () => {
      const rows = cleanLedger();
      rows.intents.push(intent('pi_twice', 'confirmed-1', 'pay-twice', { status: 'succeeded' }));
      rows.payments.push(payment('pay-twice', 'confirmed-1', 'captured', 'pi_twice'));
      expect(violationsOf(rows)).toEqual([
        'booking confirmed-1 is confirmed and was charged 2 times: intents pi_confirmed, pi_twice ' +
          'are all captured and not refunded',
      ]);

      find(rows.intents, 'pi_twice').amount_refunded = 10000;
      Object.assign(find(rows.payments, 'pay-twice'), { status: 'refunded', refundedCents: 10000 });
      expect(violationsOf(rows)).toEqual([]);
    });
  });

  describe('rule 2: a confirmed booking has exactly one captured, unrefunded intent', () => {
    it('reports a confirmed booking with no intent at all', () => {
      const rows = cleanLedger();
      rows.intents = rows.intents.filter((i) => i.id !== 'pi_confirmed');
      rows.payments = rows.payments.filter((p) => p.id !== 'pay-confirmed');
      expect(violationsOf(rows)).toEqual([
        'booking confirmed-1 is confirmed but no captured, unrefunded intent at the gateway pays for it',
      ]);
    });

    it('reports a confirmed booking whose only capture was refunded', () => {
      const rows = cleanLedger();
      find(rows.intents, 'pi_confirmed').amount_refunded = 10000;
      Object.assign(find(rows.payments, 'pay-confirmed'), {
        status: 'refunded',
        refundedCents: 10000,
      });
      expect(violationsOf(rows)).toEqual([
        'booking confirmed-1 is confirmed but no captured, unrefunded intent at the gateway pays for it',
      ]);
    });
  });

  describe('rule 3: every other authorization is voided or refunded', () => {
    it.each(['requires_capture', 'processing'] as const)(
      'reports an authorization left %s',
      (status) => {
        const rows = cleanLedger();
        Object.assign(find(rows.intents, 'pi_voided'), { status, amount_received: 0 });
        find(rows.payments, 'pay-voided').status = 'authorized';
        find(rows.payments, 'pay-voided').nextAction = 'void';
        expect(violationsOf(rows)).toEqual([
          expect.stringMatching(
            new RegExp(
              `^intent pi_voided of booking expired-1 is .*${status}.*: the authorization was ` +
                'neither captured nor voided$',
            ),
          ),
        ]);
      },
    );

    it('accepts canceled, declined and fully refunded intents (see the clean ledger)', () => {
      const rows = cleanLedger();
      expect(rows.intents.map((i) => i.status)).toEqual(
        expect.arrayContaining(['canceled', 'requires_payment_method', 'succeeded']),
      );
      expect(violationsOf(rows)).toEqual([]);
    });
  });

  describe('rule 4: no seat booked twice', () => {
    it('reports a seat booked for a booking that is not confirmed, or does not exist', () => {
      const rows = cleanLedger();
      rows.seats[2] = seat('A3', 'booked', 'expired-1');
      rows.seats.push(seat('C1', 'booked', 'ghost-booking'));
      expect(violationsOf(rows)).toEqual([
        'seat A3 of event event-1 is booked for booking expired-1, which is expired, not confirmed',
        'seat C1 of event event-1 is booked for booking ghost-booking, which does not exist',
      ]);
    });

    it('reports a seat booked for a confirmed booking that does not hold it', () => {
      const rows = cleanLedger();
      rows.seats[2] = seat('A3', 'booked', 'confirmed-1');
      expect(violationsOf(rows)).toEqual([
        'seat A3 of event event-1 is booked for booking confirmed-1, which does not hold it (its ' +
          'seats: A1, A2 of event event-1)',
      ]);
    });

    it("reports a confirmed booking's seat that is free, held, missing or someone else's", () => {
      const rows = cleanLedger();
      find(rows.bookings, 'confirmed-1').seatLabels = ['A1', 'A2', 'A3', 'B1', 'Z9'];
      expect(violationsOf(rows)).toEqual([
        'booking confirmed-1 is confirmed but its seat A3 of event event-1 is free, not booked',
        'booking confirmed-1 is confirmed but its seat B1 of event event-1 is held, not booked',
        'booking confirmed-1 is confirmed with seat Z9 of event event-1, which does not exist',
      ]);

      const taken = cleanLedger();
      taken.bookings.push(booking('other-1', 'expired', ['A1']));
      taken.seats[0] = seat('A1', 'booked', 'other-1');
      expect(violationsOf(taken)).toEqual([
        'seat A1 of event event-1 is booked for booking other-1, which is expired, not confirmed',
        'booking confirmed-1 is confirmed but its seat A1 of event event-1 is booked for booking other-1',
      ]);
    });

    it('reports a seat that appears in two confirmed bookings of one event, not of two events', () => {
      const rows = cleanLedger();
      rows.bookings.push(booking('confirmed-2', 'confirmed', ['A2']));
      rows.intents.push(intent('pi_2', 'confirmed-2', 'pay-2', { status: 'succeeded' }));
      rows.payments.push(payment('pay-2', 'confirmed-2', 'captured', 'pi_2'));
      expect(violationsOf(rows)).toEqual([
        'booking confirmed-2 is confirmed but its seat A2 of event event-1 is booked for booking ' +
          'confirmed-1',
        'seat A2 of event event-1 is booked twice: it is in 2 confirmed bookings (confirmed-1, ' +
          'confirmed-2)',
      ]);

      find(rows.bookings, 'confirmed-2').eventId = 'event-2';
      rows.seats.push({
        eventId: 'event-2',
        label: 'A2',
        status: 'booked',
        bookingId: 'confirmed-2',
      });
      expect(violationsOf(rows)).toEqual([]);
    });
  });

  describe("rule 5: the API's payments agree with the gateway", () => {
    it.each([
      ['captured', 'pi_voided', 'canceled (voided)', 'voided'],
      ['voided', 'pi_confirmed', 'captured (10000 EUR cents, nothing refunded)', 'captured'],
      [
        'captured',
        'pi_late',
        'captured and refunded 10000 EUR cents of 10000 EUR cents',
        'refunded',
      ],
      ['refunded', 'pi_confirmed', 'captured (10000 EUR cents, nothing refunded)', 'captured'],
      ['failed', 'pi_voided', 'canceled (voided)', 'voided'],
    ])('reports a %s payment whose intent %s is %s', (status, intentId, described, expected) => {
      const rows = cleanLedger();
      const row = rows.payments.find((p) => p.gatewayIntentId === intentId);
      if (!row) throw new Error(intentId);
      row.status = status;
      row.refundedCents = status === 'refunded' ? '10000' : '0';
      expect(violationsOf(rows)).toContain(
        `payment ${row.id} of booking ${row.bookingId} is ${status} but intent ${intentId} is ` +
          `${described}, so the payment should be ${expected}`,
      );
    });

    it('reports a refunded payment whose refunded amount differs from the gateway', () => {
      const rows = cleanLedger();
      find(rows.payments, 'pay-cancelled').refundedCents = '2500';
      expect(violationsOf(rows)).toEqual([
        'payment pay-cancelled of booking cancelled-1 records 2500 EUR cents refunded but intent ' +
          'pi_cancelled has 10000 EUR cents refunded',
      ]);
    });

    it('reports a pending or authorized payment with no next action, not one with a next action', () => {
      const rows = cleanLedger();
      rows.bookings.push(booking('held-2', 'held', ['C1']), booking('held-3', 'held', ['C2']));
      rows.payments.push(
        payment('pay-pending', 'held-2', 'pending', null),
        payment('pay-authorizing', 'held-3', 'pending', null, { nextAction: 'authorize' }),
      );
      find(rows.payments, 'pay-declined').status = 'authorized';
      expect(violationsOf(rows)).toEqual([
        'payment pay-declined of booking held-1 is still authorized and has no next action that ' +
          'would finish it',
        'payment pay-declined of booking held-1 is authorized but intent pi_declined is declined ' +
          '(requires_payment_method), so the payment should be pending or failed',
        'payment pay-pending of booking held-2 is still pending and has no next action that would ' +
          'finish it',
      ]);
    });

    it('reports only the open authorization while a payment still has its capture to do', () => {
      const rows = cleanLedger();
      Object.assign(find(rows.intents, 'pi_confirmed'), {
        status: 'requires_capture',
        amount_received: 0,
      });
      Object.assign(find(rows.payments, 'pay-confirmed'), {
        status: 'authorized',
        nextAction: 'capture',
      });
      expect(violationsOf(rows)).toEqual([
        'intent pi_confirmed of booking confirmed-1 is authorized but not captured ' +
          '(requires_capture): the authorization was neither captured nor voided',
        'booking confirmed-1 is confirmed but no captured, unrefunded intent at the gateway pays for it',
      ]);
    });

    it('reports a payment that records no intent, an unknown one, or one of another booking', () => {
      const rows = cleanLedger();
      find(rows.payments, 'pay-voided').gatewayIntentId = null;
      find(rows.payments, 'pay-declined').gatewayIntentId = 'pi_missing';
      find(rows.payments, 'pay-cancelled').gatewayIntentId = 'pi_late';
      find(rows.payments, 'pay-late').gatewayIntentId = 'pi_cancelled';
      expect(violationsOf(rows)).toEqual([
        'payment pay-voided of booking expired-1 is voided but records no gateway intent',
        'payment pay-cancelled of booking cancelled-1 records intent pi_late, which the gateway ' +
          'holds for booking late-1',
        'payment pay-late of booking late-1 records intent pi_cancelled, which the gateway holds ' +
          'for booking cancelled-1',
        'payment pay-declined of booking held-1 records intent pi_missing, which the gateway does ' +
          'not know',
      ]);
    });

    it('accepts a failed payment that never reached the gateway', () => {
      const rows = cleanLedger();
      find(rows.payments, 'pay-declined').gatewayIntentId = null;
      expect(violationsOf(rows)).toEqual([]);
    });

    it('reports a payment whose amount or currency differs from its intent', () => {
      const rows = cleanLedger();
      find(rows.payments, 'pay-voided').amountCents = 9000;
      find(rows.payments, 'pay-late').currency = 'USD';
      expect(violationsOf(rows)).toEqual([
        'payment pay-voided of booking expired-1 is for 9000 EUR cents but intent pi_voided is ' +
          'for 10000 EUR cents',
        'payment pay-late of booking late-1 is for 10000 USD cents but intent pi_late is for ' +
          '10000 EUR cents',
      ]);
    });

    it('reports an orphan authorization, unless it is canceled or fully refunded', () => {
      const rows = cleanLedger();
      rows.intents.push(
        intent('pi_orphan', 'expired-1', 'pay-never-written', { status: 'requires_capture' }),
        intent('pi_orphan_void', 'expired-1', 'pay-never-written-2', { status: 'canceled' }),
        intent('pi_orphan_refund', 'expired-1', 'pay-never-written-3', {
          status: 'succeeded',
          amount_refunded: 10000,
        }),
        intent('pi_orphan_declined', 'expired-1', 'pay-never-written-4', {
          status: 'requires_payment_method',
        }),
      );
      expect(violationsOf(rows)).toEqual([
        expect.stringContaining('intent pi_orphan of booking expired-1 is'),
        'intent pi_orphan of booking expired-1 is an orphan authorization: payment ' +
          'pay-never-written does not exist and the intent is authorized but not captured ' +
          '(requires_capture), neither canceled nor fully refunded',
      ]);
    });

    it('reports captured money whose intent names no payment', () => {
      const rows = cleanLedger();
      find(rows.intents, 'pi_late').amount_refunded = 0;
      find(rows.intents, 'pi_late').metadata = { bookingId: 'late-1' };
      find(rows.payments, 'pay-late').gatewayIntentId = null;
      find(rows.payments, 'pay-late').status = 'failed';
      expect(violationsOf(rows)).toEqual([
        expect.stringContaining('intent pi_late of booking late-1 keeps 10000 EUR cents'),
        'intent pi_late of booking late-1 is an orphan authorization: it names no payment and the ' +
          'intent is captured (10000 EUR cents, nothing refunded), neither canceled nor fully refunded',
      ]);
    });

    it('reports a second live intent of a payment that records another one', () => {
      const rows = cleanLedger();
      rows.intents.push(
        intent('pi_retry', 'confirmed-1', 'pay-confirmed', { status: 'requires_capture' }),
      );
      expect(violationsOf(rows)).toEqual([
        expect.stringContaining('intent pi_retry of booking confirmed-1 is authorized'),
        'intent pi_retry of booking confirmed-1 is authorized but not captured (requires_capture) ' +
          'for payment pay-confirmed, but that payment records intent pi_confirmed: the API does ' +
          'not track this money',
      ]);
    });
  });

  describe('with bookingIds', () => {
    function messy(): LedgerRows {
      const rows = cleanLedger();
      // Trouble in bookings out of scope: an open authorization and a booked seat of an expired hold.
      Object.assign(find(rows.intents, 'pi_voided'), { status: 'requires_capture' });
      find(rows.payments, 'pay-voided').status = 'authorized';
      rows.seats[2] = seat('A3', 'booked', 'expired-1');
      return rows;
    }

    it('judges only the requested bookings and their intents', () => {
      const rows = messy();
      expect(violationsOf(rows)).toHaveLength(3);
      expect(evaluateLedger(rows, ['confirmed-1', 'CANCELLED-1'])).toEqual({
        violations: [],
        intents: 2,
        capturedIntents: 1,
        bookings: 2,
        confirmedBookings: 1,
        bookedSeats: 2,
        payments: 2,
        unknownBookingIds: [],
      });
      expect(violationsOf(rows, ['expired-1'])).toHaveLength(3);
    });

    it('still sees a confirmed booking out of scope that holds the same seat', () => {
      const rows = cleanLedger();
      rows.bookings.push(booking('confirmed-2', 'confirmed', ['A1']));
      expect(violationsOf(rows, ['confirmed-1'])).toEqual([
        'seat A1 of event event-1 is booked twice: it is in 2 confirmed bookings (confirmed-1, ' +
          'confirmed-2)',
      ]);
    });

    it('names requested ids that are neither a booking nor named by an intent', () => {
      const rows = cleanLedger();
      rows.intents.push(intent('pi_lost', 'deleted-1', 'pay-lost', { status: 'canceled' }));
      expect(
        evaluateLedger(rows, ['confirmed-1', 'deleted-1', 'typo-1']).unknownBookingIds,
      ).toEqual(['typo-1']);
    });
  });
});
