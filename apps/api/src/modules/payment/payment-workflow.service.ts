import { Injectable, Logger } from '@nestjs/common';
import { LockProvider } from '@app/lock';
import type { IdempotentRequest } from '../../common/idempotency/idempotent-request';
import type { BookingDto } from '../booking/dto/booking.dto';
import { NotificationService } from '../notification/notification.service';
import { PaymentGateway, type GatewayIntent } from './gateway/payment-gateway';
import { GatewayDeclinedError, GatewayRejectedError } from './gateway/payment-gateway.errors';
import { PaymentMetrics } from './payment.metrics';
import {
  type BookingFact,
  type PaymentAction,
  type PaymentChanges,
  PaymentRepository,
  type PaymentRow,
  type StepExtras,
  toPaymentDto,
} from './payment.repository';

/** Short, renewed every ttl/3 while the gateway works; a crashed holder frees it quickly. */
const PAYMENT_LOCK_TTL_MS = 6000;

/** Payment failures that are the seat's fault, not the card's: the money goes back. */
export const SEAT_LOST = 'seat_lost';
/** The gateway refused the request itself, not the card. */
export const REJECTED = 'invalid_payment_method';
/** A capture refused after the booking was confirmed: the booking stands unpaid. */
export const CAPTURE_FAILED = 'capture_failed';

/** A payment as a run of steps left it, with the booking as the last step saw it. */
export interface Progress {
  payment: PaymentRow;
  booking: BookingDto | null;
}

/** The per-booking payment lock: one payment attempt of a booking at a time. */
export function paymentLockKey(bookingId: string): string {
  return `payment:booking:${bookingId}`;
}

export function formatAmount(row: PaymentRow, cents = Number(row.amount_cents)): string {
  return `${(cents / 100).toFixed(2)} ${row.currency}`;
}

/** The customer's fact for a refused card. */
export function declinedFact(row: PaymentRow, code: string, reason: string): BookingFact {
  return {
    type: 'payment.declined',
    detail: `Payment of ${formatAmount(row)} declined (${code}): ${reason}`,
  };
}

/**
 * The steps of a payment: authorize, the fenced confirm, capture, void, refund. Each step's outcome
 * is one statement that also records `next_action`, the step still owed, so whatever a crash or an
 * outage interrupts is finished by the reconciler; every gateway call carries an idempotency key
 * derived from the payment, so finishing it twice charges nothing twice.
 */
@Injectable()
export class PaymentWorkflowService {
  private readonly logger = new Logger(PaymentWorkflowService.name);
  private readonly unsettledListeners: ((payment: PaymentRow) => void)[] = [];

  constructor(
    private readonly payments: PaymentRepository,
    private readonly gateway: PaymentGateway,
    private readonly lock: LockProvider,
    private readonly notifications: NotificationService,
    private readonly metrics: PaymentMetrics,
  ) {}

  /**
   * Runs every step still owed, in order, until none is left or the gateway must be waited for.
   * With `request`, the step that ends a successful payment also stores the request's answer.
   */
  async advance(
    start: Progress,
    signal?: AbortSignal,
    request?: IdempotentRequest,
  ): Promise<Progress> {
    let progress = start;
    for (;;) {
      signal?.throwIfAborted();
      switch (progress.payment.next_action) {
        case null:
          return progress;
        case 'authorize':
          progress = await this.authorize(progress, signal);
          break;
        case 'confirm':
          progress = await this.confirm(progress, 'confirm');
          break;
        case 'capture':
          progress = await this.capture(progress, signal, request);
          break;
        case 'void':
          progress = await this.voidAuthorization(progress, signal);
          break;
        case 'refund':
          progress = await this.refund(progress, signal);
          break;
      }
    }
  }

  /** Applies what the gateway says of an authorization: the next step follows from it. */
  recordIntent(
    progress: Progress,
    expected: PaymentAction | null,
    intent: GatewayIntent,
  ): Promise<Progress> {
    switch (intent.status) {
      case 'authorized':
      case 'captured':
        // The authorization and the fenced confirm it leads to, in one statement.
        return this.confirm(progress, expected, { status: intent.status, intentId: intent.id });
      case 'processing':
        // An asynchronous card: the gateway's webhook (or the reconciler) continues from here.
        return this.step(progress, { next_action: null, gateway_intent_id: intent.id });
      default:
        return this.fail(
          progress,
          intent.declineCode ?? intent.status,
          intent.message ?? `the gateway reports the authorization ${intent.status}`,
          intent.id,
        );
    }
  }

  /**
   * Moves the payment on only if it is still exactly `payment` (same version), with what rides
   * along in the same statement; null when someone else moved it on meanwhile.
   */
  async tryStep(
    payment: PaymentRow,
    changes: PaymentChanges,
    also: StepExtras = {},
  ): Promise<PaymentRow | null> {
    const done = await this.payments.step(payment, changes, also);
    if (!done) return null;
    if (done.payment.next_action !== null || done.payment.status === 'pending') {
      this.unsettled(done.payment);
    }
    if (also.fact) this.notifications.committed();
    if (also.answer && done.answered) also.answer.request.answered = true;
    return done.payment;
  }

  /** Registers who is told when a payment may be left unsettled (the reconciler's wake). */
  onUnsettled(listener: (payment: PaymentRow) => void): void {
    this.unsettledListeners.push(listener);
  }

  /**
   * A payment was started or stepped and is not settled yet: if its request does not finish it
   * (a crash of the gateway call, a lost lock), the reconciler looks once its grace is over.
   */
  unsettled(payment: PaymentRow): void {
    for (const listener of this.unsettledListeners) listener(payment);
  }

  /**
   * Takes a payment on for another actor than its request: under the booking's payment lock, the
   * payment claimed (PaymentRepository.claim) and its owed steps taken. Null when the lock is busy
   * (someone is at it) or the payment is gone.
   */
  takeOver(payment: PaymentRow): Promise<Progress | null> {
    return this.underLock(payment.booking_id, async (signal) => {
      const current = await this.payments.claim(payment.id);
      return current ? this.advance({ payment: current, booking: null }, signal) : null;
    });
  }

  /** Finishes a payment's owed steps now, under its lock; what fails is the reconciler's. */
  async settleNow(payment: PaymentRow): Promise<void> {
    this.unsettled(payment);
    try {
      await this.takeOver(payment);
    } catch (error) {
      this.logger.warn(
        { err: error, paymentId: payment.id },
        'Payment step not finished now; the reconciler will',
      );
    }
  }

  /**
   * Runs `work` under the booking's payment lock; null when another attempt holds it. Redis
   * unreachable or off: runs anyway, since every step is a conditional write on the payment row
   * and every gateway call is idempotent; the lock only keeps retries apart.
   */
  underLock<T>(bookingId: string, work: (signal?: AbortSignal) => Promise<T>): Promise<T | null> {
    return this.lock.usingOrAlone(
      paymentLockKey(bookingId),
      { ttlMs: PAYMENT_LOCK_TTL_MS },
      work,
      () => null,
    );
  }

  /** A step of this run; when someone else moved the payment on, the loop continues from there. */
  private async step(
    progress: Progress,
    changes: PaymentChanges,
    also: StepExtras = {},
  ): Promise<Progress> {
    const payment = await this.tryStep(progress.payment, changes, also);
    return { ...progress, payment: payment ?? (await this.payments.get(progress.payment.id)) };
  }

  private async authorize(progress: Progress, signal?: AbortSignal): Promise<Progress> {
    const { payment } = progress;
    let intent: GatewayIntent;
    try {
      intent = await this.gateway.authorize(
        {
          amountCents: Number(payment.amount_cents),
          currency: payment.currency,
          paymentMethod: payment.payment_method,
          metadata: {
            bookingId: payment.booking_id,
            paymentId: payment.id,
            customerId: payment.customer_id,
          },
          idempotencyKey: payment.gateway_idempotency_key,
        },
        signal,
      );
    } catch (error) {
      if (error instanceof GatewayDeclinedError) {
        return this.fail(progress, error.declineCode, error.reason, error.intent?.id);
      }
      if (error instanceof GatewayRejectedError) {
        // The gateway refused the request itself (e.g. an unknown payment method).
        return this.fail(progress, REJECTED, error.message, error.intent?.id);
      }
      throw error;
    }
    return this.recordIntent(progress, 'authorize', intent);
  }

  /** A declined or refused authorization: failed, and the customer told, in one statement. */
  private fail(
    progress: Progress,
    code: string,
    reason: string,
    intentId: string | undefined,
  ): Promise<Progress> {
    this.metrics.outcomes.inc({ outcome: code === REJECTED ? 'rejected' : 'declined' });
    const changes = {
      status: 'failed' as const,
      next_action: null,
      failure_code: code,
      failure_message: reason,
      gateway_intent_id: intentId ?? progress.payment.gateway_intent_id,
    };
    // A refused request (not a refused card) is the caller's mistake, not news for the booking.
    if (code === REJECTED) return this.step(progress, changes);
    return this.step(progress, changes, { fact: declinedFact(progress.payment, code, reason) });
  }

  /** The fenced confirm: the booking and its seats, or the decision to give the money back. */
  private async confirm(
    progress: Progress,
    expected: PaymentAction | null,
    authorized?: { status: 'authorized' | 'captured'; intentId: string },
  ): Promise<Progress> {
    const result = await this.payments.confirm(progress.payment.id, expected, authorized);
    if (result.outcome === 'moved_on') return { ...progress, payment: result.payment };
    // Both outcomes wrote outbox rows (confirmed, or a lapsed hold expired).
    this.notifications.committed();
    if (result.outcome === 'seat_lost') {
      this.metrics.outcomes.inc({ outcome: SEAT_LOST });
      this.logger.warn(
        {
          paymentId: result.payment.id,
          bookingId: result.payment.booking_id,
          bookingStatus: result.booking?.status,
        },
        'Payment lost its seat; the money goes back',
      );
    }
    return { payment: result.payment, booking: result.booking ?? progress.booking };
  }

  private async capture(
    progress: Progress,
    signal?: AbortSignal,
    request?: IdempotentRequest,
  ): Promise<Progress> {
    const { payment } = progress;
    let intent: GatewayIntent;
    try {
      intent = await this.gateway.capture(
        this.intentOf(payment),
        `${payment.gateway_idempotency_key}-capture`,
        signal,
      );
    } catch (error) {
      if (!(error instanceof GatewayRejectedError) || !error.intent) throw error;
      intent = error.intent;
    }
    if (intent.status !== 'captured') {
      // The authorization is gone (voided or lapsed at the gateway): the booking is unpaid.
      this.logger.error(
        { paymentId: payment.id, bookingId: payment.booking_id, intentStatus: intent.status },
        'Capture refused for a confirmed booking; needs an operator',
      );
      return this.step(progress, {
        status: 'failed',
        next_action: null,
        failure_code: CAPTURE_FAILED,
        failure_message: `The gateway could not capture: the authorization is ${intent.status}`,
      });
    }
    this.metrics.outcomes.inc({ outcome: 'captured' });
    const changes = { status: 'captured' as const, next_action: null };
    // The request's answer (the payment captured, the booking confirmed) commits with the capture.
    const answer =
      request && progress.booking
        ? {
            request,
            body: {
              payment: toPaymentDto({ ...payment, ...changes }),
              booking: progress.booking,
            },
          }
        : undefined;
    return this.step(progress, changes, { answer });
  }

  private async voidAuthorization(progress: Progress, signal?: AbortSignal): Promise<Progress> {
    const { payment } = progress;
    if (!payment.gateway_intent_id) {
      return this.step(progress, { status: 'voided', next_action: null });
    }
    let intent: GatewayIntent;
    try {
      intent = await this.gateway.void(
        payment.gateway_intent_id,
        `${payment.gateway_idempotency_key}-void`,
        signal,
      );
    } catch (error) {
      if (!(error instanceof GatewayRejectedError) || !error.intent) throw error;
      intent = error.intent;
    }
    if (intent.status === 'captured') {
      // Captured meanwhile (by an earlier attempt): the money has to be refunded instead.
      return this.step(progress, { status: 'captured', next_action: 'refund' });
    }
    const detail =
      `Authorization of ${formatAmount(payment)} voided; nothing was charged. ${payment.failure_message ?? ''}`.trim();
    return this.step(
      progress,
      { status: 'voided', next_action: null },
      { fact: { type: 'payment.voided', detail } },
    );
  }

  private async refund(progress: Progress, signal?: AbortSignal): Promise<Progress> {
    const { payment } = progress;
    const owed = Number(payment.amount_cents) - Number(payment.refunded_cents);
    if (owed > 0) {
      try {
        await this.gateway.refund(
          this.intentOf(payment),
          owed,
          `${payment.gateway_idempotency_key}-refund`,
          signal,
        );
      } catch (error) {
        if (!(error instanceof GatewayRejectedError)) throw error;
        if (error.intent && error.intent.status !== 'captured') {
          // Never captured after all: release the authorization instead.
          return this.step(progress, { status: 'authorized', next_action: 'void' });
        }
        const intent = await this.gateway.retrieve(this.intentOf(payment), signal);
        if (intent.amountRefundedCents < intent.amountCents) throw error;
      }
    }
    this.metrics.outcomes.inc({ outcome: 'refunded' });
    const detail = `Refunded ${formatAmount(payment)}. ${payment.failure_message ?? ''}`.trim();
    return this.step(
      progress,
      { status: 'refunded', next_action: null, refunded_cents: payment.amount_cents },
      { fact: { type: 'payment.refunded', detail } },
    );
  }

  intentOf(payment: PaymentRow): string {
    if (!payment.gateway_intent_id) {
      throw new Error(`payment ${payment.id} has no gateway intent to ${payment.next_action}`);
    }
    return payment.gateway_intent_id;
  }
}
