import { ApiProblem, type ProblemBody } from './api-client';

/** How a field named in REQUEST.VALIDATION_FAILED reads to a person. */
const FIELD_NAMES: Record<string, string> = {
  name: 'your name',
  email: 'your email address',
  quantity: 'the number of seats',
  section: 'the section',
  seatIds: 'the seats',
};

/** Plain words for a refused request, from its problem+json `code`. */
export function explain(error: unknown): string {
  const problem: ProblemBody = error instanceof ApiProblem ? error.body : {};
  switch (problem.code) {
    case 'BOOKING.SEAT_UNAVAILABLE': {
      const seats = problem.conflictingSeats ?? [];
      if (seats.length > 1)
        return `Those seats were just taken by someone else: ${seats.join(', ')}.`;
      return `That seat was just taken by someone else${seats.length ? `: ${seats[0]}` : ''}.`;
    }
    case 'BOOKING.SOLD_OUT':
      return (problem.available ?? 0) > 0
        ? `Sold out: only ${problem.available} left.`
        : 'Sold out: nothing is left here.';
    case 'BOOKING.NOT_ENOUGH_TOGETHER':
      return `There are no ${problem.quantity} free seats next to each other. Ask for fewer, or untick "together".`;
    case 'BOOKING.CUSTOMER_LIMIT':
      return `You have reached the limit of ${problem.limit} seats for this event.`;
    case 'BOOKING.ORPHAN_SEAT':
      return `That would leave a single seat (${(problem.orphanSeats ?? []).join(', ')}) that nobody could sit in. Take it too, or choose seats next to it.`;
    case 'BOOKING.TOO_MANY_SEATS':
      return 'That is too many seats for one hold; choose fewer.';
    case 'BOOKING.UNKNOWN_SEATS':
      return 'That seat does not exist at this event.';
    case 'BOOKING.UNKNOWN_SECTION':
      return 'That section does not exist at this event.';
    case 'BOOKING.NOT_PAYABLE':
      if (problem.currentStatus === 'confirmed') return 'This hold is already paid.';
      if (problem.currentStatus === 'released') return 'This hold was released.';
      if (problem.currentStatus === 'cancelled') return 'This booking was cancelled.';
      return 'Your hold lapsed; the seats are on sale again.';
    case 'BOOKING.NOT_FOUND':
      return 'That hold no longer exists.';
    case 'PAYMENT.DECLINED':
      return problem.declineCode === 'insufficient_funds'
        ? 'Your card was declined: not enough funds. Your seats stay held; try another card.'
        : 'Your card was declined. Your seats stay held; try another card.';
    case 'PAYMENT.SEAT_LOST':
      return 'Your hold lapsed before the payment went through, so the seats went back on sale. Your card is not charged.';
    case 'PAYMENT.REJECTED':
      return `The payment was refused: ${problem.reason}`;
    case 'PAYMENT.GATEWAY_ERROR':
    case 'PAYMENT.GATEWAY_UNAVAILABLE':
    case 'PAYMENT.INTERRUPTED':
      return 'The payment service did not answer. You will not be charged twice: press Pay again to finish.';
    case 'PAYMENT.IN_PROGRESS':
    case 'IDEMPOTENCY.IN_FLIGHT':
      return 'Your payment is still going through; wait a moment.';
    case 'CUSTOMER.EMAIL_TAKEN':
      return 'That email address is already registered; use another one.';
    case 'AUTH.UNAUTHORIZED':
      return 'Please register first: your details here are no longer valid.';
    case 'REQUEST.VALIDATION_FAILED': {
      const fields = (problem.errors ?? []).map((e) => FIELD_NAMES[e.field] ?? e.field);
      return `Please check ${[...new Set(fields)].join(' and ') || 'what you entered'}.`;
    }
    case 'REQUEST.RATE_LIMITED':
      return 'Too many requests from here; wait a minute and try again.';
    case 'SERVICE.OVERLOADED':
    case 'BOOKING.OVERLOADED':
    case 'SERVICE.DATABASE_UNAVAILABLE':
      return 'The box office is very busy; try again in a moment.';
    case 'CATALOG.EVENT_NOT_FOUND':
      return 'That event does not exist.';
    default:
      return error instanceof ApiProblem && error.status === 0
        ? 'The box office cannot be reached; check your connection and try again.'
        : `Something went wrong (${problem.title || (error instanceof Error && error.message) || 'unknown error'}).`;
  }
}
