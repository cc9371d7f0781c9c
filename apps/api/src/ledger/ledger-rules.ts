import {
  agreeingPaymentStatuses,
  describeIntent,
  holdsMoney,
  isCapturedUnrefunded,
  type LedgerBooking,
  type LedgerIntent,
  type LedgerPayment,
  type LedgerRows,
  type LedgerSeat,
  metadataValue,
  money,
  normalizeId,
  sameCents,
  sameCurrency,
  seatName,
} from './ledger-rows';

/**
 * The ledger rules over plain rows, each a function answering its violations in plain words:
 * 1. an authorization is captured or voided, and money is kept only for a confirmed booking;
 * 2. a confirmed booking is paid by exactly one captured intent;
 * 3. what an intent keeps is what its booking costs, in its currency, from its customer;
 * 4. a booked seat belongs to exactly one confirmed booking, and the other way round;
 * 5. the API's payments agree with the gateway, and every intent holding money is tracked.
 */

export interface LedgerFindings {
  violations: string[];
  /** Intents that name a booking (in scope). */
  intents: number;
  /** Of those, captured and not fully refunded. */
  capturedIntents: number;
  bookings: number;
  confirmedBookings: number;
  bookedSeats: number;
  payments: number;
  /** Requested booking ids that are neither a booking nor named by an intent: probably a typo. */
  unknownBookingIds: string[];
}

/** Payment statuses that only make sense once the gateway holds an intent for the payment. */
const STATUSES_WITH_INTENT = new Set(['authorized', 'captured', 'voided', 'refunded']);

/** The rows indexed for the rules, and those in scope (judged; the others are context). */
interface LedgerView {
  rows: LedgerRows;
  scope: Set<string> | undefined;
  inScope: (bookingId: string | null | undefined) => boolean;
  bookingsById: Map<string, LedgerBooking>;
  intentsById: Map<string, LedgerIntent>;
  paymentsById: Map<string, LedgerPayment>;
  seatsByKey: Map<string, LedgerSeat>;
  intents: LedgerIntent[];
  bookings: LedgerBooking[];
  confirmed: LedgerBooking[];
  payments: LedgerPayment[];
}

function groupBy<T>(items: Iterable<T>, key: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    const group = groups.get(k);
    if (group) group.push(item);
    else groups.set(k, [item]);
  }
  return groups;
}

function viewOf(rows: LedgerRows, bookingIds: readonly string[] | undefined): LedgerView {
  const scope = bookingIds ? new Set(bookingIds.map(normalizeId)) : undefined;
  const inScope = (bookingId: string | null | undefined): boolean =>
    bookingId !== null &&
    bookingId !== undefined &&
    (scope === undefined || scope.has(normalizeId(bookingId)));
  const bookings = rows.bookings.filter((b) => inScope(b.id));
  return {
    rows,
    scope,
    inScope,
    bookingsById: new Map(rows.bookings.map((b) => [normalizeId(b.id), b])),
    intentsById: new Map(rows.intents.map((i) => [i.id, i])),
    paymentsById: new Map(rows.payments.map((p) => [normalizeId(p.id), p])),
    seatsByKey: new Map(rows.seats.map((s) => [`${s.eventId}/${s.label}`, s])),
    intents: rows.intents.filter((i) => inScope(metadataValue(i, 'bookingId'))),
    bookings,
    confirmed: bookings.filter((b) => b.status === 'confirmed'),
    payments: rows.payments.filter((p) => inScope(p.bookingId)),
  };
}

/** Rules 1 and 3 for one intent: where its money is, judged by its booking. */
function judgeIntent(view: LedgerView, intent: LedgerIntent): string[] {
  const bookingId = metadataValue(intent, 'bookingId') ?? '';
  const booking = view.bookingsById.get(normalizeId(bookingId));
  const name = `intent ${intent.id} of booking ${bookingId}`;
  if (intent.status === 'requires_capture' || intent.status === 'processing') {
    return [
      `${name} is ${describeIntent(intent)}: the authorization was neither captured nor voided`,
    ];
  }
  if (!isCapturedUnrefunded(intent)) return [];
  const kept = money(intent.amount_received - intent.amount_refunded, intent.currency);
  if (!booking) {
    return [`${name} keeps ${kept} but the booking does not exist; it must be refunded`];
  }
  if (booking.status !== 'confirmed') {
    return [
      `${name} keeps ${kept} but the booking is ${booking.status}, not confirmed; ` +
        `the capture must be refunded in full`,
    ];
  }
  const violations: string[] = [];
  if (!sameCurrency(intent.currency, booking.currency)) {
    violations.push(
      `${name} is in ${intent.currency.toUpperCase()} but the booking is in ${booking.currency.toUpperCase()}`,
    );
  } else if (!sameCents(intent.amount_received - intent.amount_refunded, booking.amountCents)) {
    violations.push(
      `${name} keeps ${kept} but the booking costs ${money(booking.amountCents, booking.currency)}`,
    );
  }
  const customerId = metadataValue(intent, 'customerId');
  if (customerId !== undefined && normalizeId(customerId) !== normalizeId(booking.customerId)) {
    violations.push(
      `${name} was paid by customer ${customerId} but the booking belongs to customer ${booking.customerId}`,
    );
  }
  return violations;
}

/** Rule 2 (and the "no two captures" half of rule 1): one captured intent per confirmed booking. */
function oneCapturePerBooking(view: LedgerView): string[] {
  const capturedByBooking = groupBy(
    view.intents.filter(
      (i) =>
        isCapturedUnrefunded(i) &&
        view.bookingsById.get(normalizeId(metadataValue(i, 'bookingId') ?? ''))?.status ===
          'confirmed',
    ),
    (i) => normalizeId(metadataValue(i, 'bookingId') ?? ''),
  );
  return view.confirmed.flatMap((booking) => {
    const captured = capturedByBooking.get(normalizeId(booking.id)) ?? [];
    if (captured.length === 0) {
      return [
        `booking ${booking.id} is confirmed but no captured, unrefunded intent at the gateway pays for it`,
      ];
    }
    if (captured.length > 1) {
      return [
        `booking ${booking.id} is confirmed and was charged ${captured.length} times: intents ` +
          `${captured.map((i) => i.id).join(', ')} are all captured and not refunded`,
      ];
    }
    return [];
  });
}

/** Rule 4 from the seat's side: a booked seat names a confirmed booking that holds it. */
function judgeBookedSeat(view: LedgerView, seat: LedgerSeat): string[] {
  if (seat.status !== 'booked') return [];
  const name = seatName(seat.eventId, seat.label);
  if (seat.bookingId === null) {
    return view.scope === undefined ? [`${name} is booked but names no booking`] : [];
  }
  // A seat booked for a booking out of scope is that booking's business; in-scope bookings
  // still see it in judgeConfirmedSeats when it is one of their seats.
  if (!view.inScope(seat.bookingId)) return [];
  const booking = view.bookingsById.get(normalizeId(seat.bookingId));
  if (!booking) {
    return [`${name} is booked for booking ${seat.bookingId}, which does not exist`];
  }
  if (booking.status !== 'confirmed') {
    return [
      `${name} is booked for booking ${booking.id}, which is ${booking.status}, not confirmed`,
    ];
  }
  if (booking.eventId !== seat.eventId || !booking.seatLabels.includes(seat.label)) {
    return [
      `${name} is booked for booking ${booking.id}, which does not hold it ` +
        `(its seats: ${booking.seatLabels.join(', ')} of event ${booking.eventId})`,
    ];
  }
  return [];
}

/** Rule 4 from the booking's side: every seat a confirmed booking names is booked for it. */
function judgeConfirmedSeats(view: LedgerView, booking: LedgerBooking): string[] {
  const violations: string[] = [];
  for (const label of new Set(booking.seatLabels)) {
    const seat = view.seatsByKey.get(`${booking.eventId}/${label}`);
    const name = seatName(booking.eventId, label);
    if (!seat) {
      violations.push(`booking ${booking.id} is confirmed with ${name}, which does not exist`);
    } else if (seat.status !== 'booked') {
      violations.push(
        `booking ${booking.id} is confirmed but its ${name} is ${seat.status}, not booked`,
      );
    } else if (seat.bookingId === null || normalizeId(seat.bookingId) !== normalizeId(booking.id)) {
      violations.push(
        `booking ${booking.id} is confirmed but its ${name} is booked for booking ${seat.bookingId}`,
      );
    }
  }
  return violations;
}

/** Rule 4, the double booking: no seat in two confirmed bookings (one of them in scope). */
function noSeatBookedTwice(view: LedgerView): string[] {
  const confirmedBySeat = groupBy(
    view.rows.bookings
      .filter((b) => b.status === 'confirmed')
      .flatMap((b) => [...new Set(b.seatLabels)].map((label) => ({ booking: b, label }))),
    ({ booking, label }) => `${booking.eventId}/${label}`,
  );
  const violations: string[] = [];
  for (const holders of confirmedBySeat.values()) {
    if (holders.length < 2 || !holders.some(({ booking }) => view.inScope(booking.id))) continue;
    const { booking, label } = holders[0];
    violations.push(
      `${seatName(booking.eventId, label)} is booked twice: it is in ${holders.length} confirmed ` +
        `bookings (${holders.map((h) => h.booking.id).join(', ')})`,
    );
  }
  return violations;
}

/** Rule 5 for a payment and the intent it records: same booking, amount and state. */
function compareWithIntent(name: string, payment: LedgerPayment, intent: LedgerIntent): string[] {
  const violations: string[] = [];
  const intentBookingId = metadataValue(intent, 'bookingId');
  if (
    intentBookingId === undefined ||
    normalizeId(intentBookingId) !== normalizeId(payment.bookingId)
  ) {
    violations.push(
      `${name} records intent ${intent.id}, which the gateway holds for ` +
        (intentBookingId === undefined ? 'no booking' : `booking ${intentBookingId}`),
    );
  }
  if (
    !sameCurrency(intent.currency, payment.currency) ||
    !sameCents(intent.amount, payment.amountCents)
  ) {
    violations.push(
      `${name} is for ${money(payment.amountCents, payment.currency)} but intent ${intent.id} ` +
        `is for ${money(intent.amount, intent.currency)}`,
    );
  }
  const agreeing = agreeingPaymentStatuses(intent);
  if (!agreeing.includes(payment.status)) {
    violations.push(
      `${name} is ${payment.status} but intent ${intent.id} is ${describeIntent(intent)}, ` +
        `so the payment should be ${agreeing.join(' or ')}`,
    );
  } else if (
    payment.status === 'refunded' &&
    !sameCents(payment.refundedCents, intent.amount_refunded)
  ) {
    violations.push(
      `${name} records ${money(payment.refundedCents, payment.currency)} refunded but intent ` +
        `${intent.id} has ${money(intent.amount_refunded, intent.currency)} refunded`,
    );
  }
  return violations;
}

/** Rule 5 for one payment: it can finish, and agrees with the intent it records. */
function judgePayment(view: LedgerView, payment: LedgerPayment): string[] {
  const name = `payment ${payment.id} of booking ${payment.bookingId}`;
  const violations: string[] = [];
  if (payment.nextAction === null && ['pending', 'authorized'].includes(payment.status)) {
    violations.push(
      `${name} is still ${payment.status} and has no next action that would finish it`,
    );
  }
  if (payment.gatewayIntentId === null) {
    if (STATUSES_WITH_INTENT.has(payment.status)) {
      violations.push(`${name} is ${payment.status} but records no gateway intent`);
    }
    return violations;
  }
  const intent = view.intentsById.get(payment.gatewayIntentId);
  if (!intent) {
    violations.push(
      `${name} records intent ${payment.gatewayIntentId}, which the gateway does not know`,
    );
    return violations;
  }
  return [...violations, ...compareWithIntent(name, payment, intent)];
}

/** Rule 5 from the gateway's side: money held for a payment the API does not track. */
function judgeHeldMoney(view: LedgerView, intent: LedgerIntent): string[] {
  if (!holdsMoney(intent)) return [];
  const name = `intent ${intent.id} of booking ${metadataValue(intent, 'bookingId')}`;
  const paymentId = metadataValue(intent, 'paymentId');
  const payment =
    paymentId === undefined ? undefined : view.paymentsById.get(normalizeId(paymentId));
  if (!payment) {
    return [
      `${name} is an orphan authorization: ` +
        (paymentId === undefined ? 'it names no payment' : `payment ${paymentId} does not exist`) +
        ` and the intent is ${describeIntent(intent)}, neither canceled nor fully refunded`,
    ];
  }
  if (payment.gatewayIntentId !== intent.id) {
    return [
      `${name} is ${describeIntent(intent)} for payment ${payment.id}, but that payment records ` +
        (payment.gatewayIntentId === null
          ? 'no gateway intent'
          : `intent ${payment.gatewayIntentId}`) +
        `: the API does not track this money`,
    ];
  }
  return [];
}

/** Requested booking ids that are neither a booking nor named by an intent. */
function unknownBookingIds(view: LedgerView): string[] {
  const known = new Set([
    ...view.rows.bookings.map((b) => normalizeId(b.id)),
    ...view.rows.intents.flatMap((i) => {
      const bookingId = metadataValue(i, 'bookingId');
      return bookingId === undefined ? [] : [normalizeId(bookingId)];
    }),
  ]);
  return [...(view.scope ?? [])].filter((id) => !known.has(id));
}

/**
 * Applies every ledger rule to plain rows and answers the violations in plain words. With
 * `bookingIds`, only those bookings, their seats, payments and intents are judged; other rows serve
 * as context only (e.g. another confirmed booking holding the same seat).
 */
export function evaluateLedger(rows: LedgerRows, bookingIds?: readonly string[]): LedgerFindings {
  const view = viewOf(rows, bookingIds);
  const violations = [
    ...view.intents.flatMap((intent) => judgeIntent(view, intent)),
    ...oneCapturePerBooking(view),
    ...rows.seats.flatMap((seat) => judgeBookedSeat(view, seat)),
    ...view.confirmed.flatMap((booking) => judgeConfirmedSeats(view, booking)),
    ...noSeatBookedTwice(view),
    ...view.payments.flatMap((payment) => judgePayment(view, payment)),
    ...view.intents.flatMap((intent) => judgeHeldMoney(view, intent)),
  ];
  return {
    violations,
    intents: view.intents.length,
    capturedIntents: view.intents.filter(isCapturedUnrefunded).length,
    bookings: view.bookings.length,
    confirmedBookings: view.confirmed.length,
    bookedSeats: rows.seats.filter((s) => s.status === 'booked' && view.inScope(s.bookingId))
      .length,
    payments: view.payments.length,
    unknownBookingIds: unknownBookingIds(view),
  };
}
