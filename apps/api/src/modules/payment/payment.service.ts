import { createHash, randomUUID } from 'node:crypto';
import { Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import { LockLostError } from '@app/lock';
import type { AuthenticatedCustomer } from '../../common/auth/auth.decorators';
import type { IdempotentRequest } from '../../common/idempotency/idempotent-request';
import { BookingError } from '../booking/booking.errors';
import { BookingService } from '../booking/booking.service';
import type { CreatePaymentDto } from './dto/create-payment.dto';
import type { PaymentResultDto } from './dto/payment-result.dto';
import type { PaymentDto } from './dto/payment.dto';
import { GatewayUnavailableError } from './gateway/payment-gateway.errors';
import { PaymentError } from './payment.errors';
import { PaymentMetrics } from './payment.metrics';
import { PaymentRepository, toPaymentDto } from './payment.repository';
import {
  CAPTURE_FAILED,
  PaymentWorkflowService,
  type Progress,
  REJECTED,
  SEAT_LOST,
} from './payment-workflow.service';

const BOOKING_CANCELLED = 'booking_cancelled';

/**
 * The payment module's facade. A payment request costs three statements: the first claims its
 * idempotency key, checks the booking and creates the payment; after the gateway authorized, the
 * fenced confirm records the authorization and books the seats (or decides to give the money back);
 * after the capture, one statement records it with the request's answer.
 */
@Injectable()
export class PaymentService implements OnModuleInit {
  private readonly logger = new Logger(PaymentService.name);

  constructor(
    private readonly payments: PaymentRepository,
    private readonly workflow: PaymentWorkflowService,
    private readonly bookings: BookingService,
    private readonly metrics: PaymentMetrics,
  ) {}

  onModuleInit(): void {
    this.bookings.onCancellation({
      inTransaction: (manager, bookingId) =>
        this.payments.owePayback(
          manager,
          bookingId,
          BOOKING_CANCELLED,
          'The booking was cancelled by the customer',
        ),
      afterCommit: (bookingId) => this.settleBooking(bookingId),
    });
  }

  /** POST /bookings/{id}/payments: authorize, confirm with the fence, capture. */
  async pay(
    customer: AuthenticatedCustomer,
    bookingId: string,
    input: CreatePaymentDto,
    request: IdempotentRequest,
  ): Promise<PaymentResultDto> {
    // Derived from the customer's key, so a retry after a 5xx reaches the same authorization.
    const gatewayKey = `seatlock-${createHash('sha256')
      .update(`${customer.id}\n${request.key}\n${bookingId}\n${input.paymentMethod}`)
      .digest('hex')}`;
    const paymentId = randomUUID();
    const started = await this.payments.start(
      request,
      bookingId,
      paymentId,
      input.paymentMethod,
      gatewayKey,
    );
    if (started.kind === 'refused') request.refuse(started.claim);
    request.markClaimed();
    if (started.kind === 'not_found') throw BookingError.notFound(bookingId);
    if (started.kind === 'not_payable') throw BookingError.notPayable(started.bookingStatus);
    this.workflow.unsettled(started.payment);

    const settled = await this.workflow.underLock(bookingId, async (signal) => {
      try {
        return await this.workflow.advance(started, signal, request);
      } catch (error) {
        if (error instanceof LockLostError) throw PaymentError.interrupted();
        if (!(error instanceof GatewayUnavailableError)) throw error;
        const current = await this.payments.get(started.payment.id);
        this.metrics.gatewayFailures.inc({ operation: current.next_action ?? 'unknown' });
        if (current.next_action !== 'authorize') {
          // Decided already (confirmed, or the seat lost); only the capture, void or refund is
          // owed, and the reconciler finishes it.
          this.logger.warn(
            { err: error, paymentId: current.id, nextAction: current.next_action },
            'Gateway failed after the decision; the reconciler finishes the payment',
          );
          return { payment: current, booking: null };
        }
        this.logger.warn(
          { err: error, paymentId: current.id, bookingId },
          'Gateway failed during authorization; the payment stays pending for a retry or the reconciler',
        );
        throw PaymentError.gatewayFailed(error.answered, error.message);
      }
    });
    if (!settled) {
      // Another payment of this booking is running: this one never reached the gateway.
      await this.payments.discard(paymentId);
      throw PaymentError.inProgress();
    }
    return this.answer(settled);
  }

  /** GET /bookings/{id}/payments: the booking's payments, oldest first. */
  async list(customer: AuthenticatedCustomer, bookingId: string): Promise<PaymentDto[]> {
    await this.bookings.assertOwned(customer, bookingId);
    return (await this.payments.listByBooking(bookingId)).map(toPaymentDto);
  }

  /** After a cancellation committed: refund or void now, so the answer shows it done. */
  private async settleBooking(bookingId: string): Promise<void> {
    for (const payment of await this.payments.owingByBooking(bookingId)) {
      await this.workflow.settleNow(payment);
    }
  }

  /** The request's answer: 201 with payment and booking, or the error that says what happened. */
  private async answer({ payment, booking }: Progress): Promise<PaymentResultDto> {
    const dto = toPaymentDto(payment);
    if (payment.status === 'failed' && payment.failure_code !== CAPTURE_FAILED) {
      const reason = payment.failure_message ?? 'refused by the gateway';
      throw payment.failure_code === REJECTED
        ? PaymentError.rejected(reason, dto)
        : PaymentError.declined(payment.failure_code ?? 'declined', reason, dto);
    }
    const current = booking ?? (await this.bookings.find(payment.booking_id));
    if (payment.failure_code === SEAT_LOST) {
      const money =
        payment.status === 'refunded'
          ? 'refunded'
          : payment.status === 'voided'
            ? 'voided'
            : 'being voided';
      throw PaymentError.seatLost(
        `${payment.failure_message ?? 'Not booked'}; the authorization is ${money}`,
        dto,
        current,
      );
    }
    if (!current) throw new Error(`payment ${payment.id} has no booking`);
    return { payment: dto, booking: current };
  }
}
