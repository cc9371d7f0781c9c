import { DomainError } from '../../common/errors/domain.error';

/** Coded failures of the payment module. */
export class PaymentError extends DomainError {
  static declined(declineCode: string, reason: string, payment: unknown): PaymentError {
    return new PaymentError(
      'PAYMENT.DECLINED',
      402,
      'Payment declined',
      `The card was declined (${declineCode}): ${reason} The hold stays until it expires; try another card.`,
      { declineCode, reason, payment },
    );
  }

  static rejected(reason: string, payment: unknown): PaymentError {
    return new PaymentError(
      'PAYMENT.REJECTED',
      422,
      'Payment rejected by the gateway',
      `The gateway refused the payment: ${reason}`,
      { reason, payment, errors: [{ field: 'paymentMethod', messages: [reason] }] },
    );
  }

  static seatLost(detail: string, payment: unknown, booking: unknown): PaymentError {
    return new PaymentError('PAYMENT.SEAT_LOST', 409, 'Seat lost', detail, { payment, booking });
  }

  static inProgress(): PaymentError {
    return new PaymentError(
      'PAYMENT.IN_PROGRESS',
      409,
      'Payment in progress',
      'Another payment for this booking is being processed; retry after Retry-After',
      {},
      { 'Retry-After': '1' },
    );
  }

  static gatewayFailed(answered: boolean, reason: string): PaymentError {
    return new PaymentError(
      answered ? 'PAYMENT.GATEWAY_ERROR' : 'PAYMENT.GATEWAY_UNAVAILABLE',
      answered ? 502 : 503,
      answered ? 'Payment gateway error' : 'Payment gateway unavailable',
      `${reason}. The hold is intact and nothing was charged twice; retry with the same ` +
        'Idempotency-Key to learn the outcome.',
      {},
      { 'Retry-After': '2' },
    );
  }

  static interrupted(): PaymentError {
    return new PaymentError(
      'PAYMENT.INTERRUPTED',
      503,
      'Payment interrupted',
      'The payment lost its lock while the gateway was working, so nothing was confirmed; retry with ' +
        'the same Idempotency-Key to finish it',
      {},
      { 'Retry-After': '1' },
    );
  }

  static invalidSignature(reason: string): PaymentError {
    return new PaymentError('WEBHOOK.INVALID_SIGNATURE', 400, 'Invalid webhook signature', reason);
  }

  static malformedEvent(reason: string): PaymentError {
    return new PaymentError('WEBHOOK.MALFORMED_EVENT', 400, 'Malformed webhook event', reason);
  }
}
