import { createHash, randomUUID } from 'node:crypto';
import { Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, type EntityManager } from 'typeorm';
import { LockLostError, LockProvider } from '@app/lock';
import type { AuthenticatedCustomer } from '../../common/auth/auth.decorators';
import { inTransaction } from '../../database/in-transaction';
import { BookingService, type PayableBooking } from '../booking/booking.service';
import type { CreatePaymentDto } from './dto/create-payment.dto';
import type { PaymentResultDto } from './dto/payment-result.dto';
import type { PaymentDto } from './dto/payment.dto';
import { PaymentGateway, type GatewayIntent } from './gateway/payment-gateway';
import {
  GatewayDeclinedError,
  GatewayRejectedError,
  GatewayUnavailableError,
} from './gateway/payment-gateway.errors';
import type { PaymentAction, PaymentStatus } from './payment.entity';
import { PaymentError } from './payment.errors';
import { PaymentMetrics } from './payment.metrics';

interface PaymentRow {
  id: string;
  booking_id: string;
  customer_id: string;
  status: PaymentStatus;
  next_action: PaymentAction | null;
  amount_cents: string;
  refunded_cents: string;
  currency: string;
  payment_method: string;
  fence: string;
  gateway_idempotency_key: string;
  gateway_intent_id: string | null;
  failure_code: string | null;
  failure_message: string | null;
  created_at: Date;
}

type PaymentChanges = Partial<
  Pick<
    PaymentRow,
    | 'status'
    | 'next_action'
    | 'gateway_intent_id'
    | 'failure_code'
    | 'failure_message'
    | 'refunded_cents'
  >
>;

const PAYMENT_COLUMNS = `id, booking_id, customer_id, status, next_action, amount_cents,
  refunded_cents, currency, payment_method, fence, gateway_idempotency_key, gateway_intent_id,
  failure_code, failure_message, created_at`;

/** Short, renewed every ttl/3 while the gateway works; a crashed holder frees it quickly. */
const PAYMENT_LOCK_TTL_MS = 6000;

/** Payment failures that are the seat's fault, not the card's: the money goes back. */
const SEAT_LOST = 'seat_lost';
const BOOKING_CANCELLED = 'booking_cancelled';
/** The gateway refused the request itself, not the card. */
const REJECTED = 'invalid_payment_method';
/** A capture refused after the booking was confirmed: the booking stands unpaid. */
const CAPTURE_FAILED = 'capture_failed';
/** An asynchronous authorization the gateway's webhook has not settled after this long is asked about. */
const ASYNC_STALE_MS = 60_000;

/** Gateway events that can change a payment; the rest are acknowledged and left alone. */
const EFFECTIVE_EVENTS = new Set(['payment_intent.succeeded', 'payment_intent.payment_failed']);

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The per-booking payment lock: one payment attempt of a booking at a time. */
export function paymentLockKey(bookingId: string): string {
  return `payment:booking:${bookingId}`;
}

function toDto(row: PaymentRow): PaymentDto {
  return {
    id: row.id,
    bookingId: row.booking_id,
    status: row.status,
    amountCents: Number(row.amount_cents),
    refundedCents: Number(row.refunded_cents),
    currency: row.currency,
    paymentMethod: row.payment_method,
    gatewayIntentId: row.gateway_intent_id,
    failureCode: row.failure_code,
    failureMessage: row.failure_message,
    createdAt: row.created_at.toISOString(),
  };
}

function formatAmount(row: PaymentRow, cents = Number(row.amount_cents)): string {
  return `${(cents / 100).toFixed(2)} ${row.currency}`;
}

/** Why a payment could not book its seats, in the words the customer reads. */
function seatLostReason(booking: PayableBooking): string {
  switch (booking.status) {
    case 'expired':
      return `the hold lapsed at ${booking.expiresAt.toISOString()} before the payment completed, so the seats were no longer this booking's`;
    case 'released':
      return 'the booking was released before the payment completed';
    case 'cancelled':
      return 'the booking was cancelled before the payment completed';
    case 'confirmed':
      return 'the booking had already been paid by another payment';
    default:
      return `the booking is ${booking.status}`;
  }
}

/**
 * The payment module's facade. A payment authorizes at the gateway, then confirms the booking with
 * one fenced conditional write, then captures; a payment whose booking can no longer be confirmed is
 * voided (or refunded if captured) and the customer is told why. Each step's outcome is recorded as
 * `next_action` in the transaction that decided it, so whatever a crash or an outage interrupts is
 * finished by the reconciler, and every gateway call carries an idempotency key derived from the
 * payment, so finishing it twice charges nothing twice.
 */
@Injectable()
export class PaymentService implements OnModuleInit {
  private readonly logger = new Logger(PaymentService.name);

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly bookings: BookingService,
    private readonly gateway: PaymentGateway,
    private readonly lock: LockProvider,
    private readonly metrics: PaymentMetrics,
  ) {}

  onModuleInit(): void {
    this.bookings.onCancellation({
      inTransaction: (manager, bookingId) => this.owePaybackForCancellation(manager, bookingId),
      afterCommit: (bookingId) => this.settleBooking(bookingId),
    });
  }

  /** POST /bookings/{id}/payments: authorize, confirm with the fence, capture. */
  async pay(
    customer: AuthenticatedCustomer,
    bookingId: string,
    input: CreatePaymentDto,
    idempotencyKey: string,
  ): Promise<PaymentResultDto> {
    const booking = await this.bookings.getPayable(customer, bookingId);
    const settled = await this.underPaymentLock(bookingId, async (signal) => {
      const payment = await this.start(booking, input.paymentMethod, idempotencyKey);
      try {
        return await this.advance(payment, signal);
      } catch (error) {
        if (error instanceof LockLostError) throw PaymentError.interrupted();
        if (error instanceof GatewayUnavailableError) {
          const current = await this.reload(payment.id);
          this.metrics.gatewayFailures.inc({ operation: current.next_action ?? 'unknown' });
          if (current.next_action !== 'authorize') {
            // Decided already (confirmed, or the seat lost); only the capture, void or refund is
            // owed, and the reconciler finishes it.
            this.logger.warn(
              { err: error, paymentId: payment.id, nextAction: current.next_action },
              'Gateway failed after the decision; the reconciler finishes the payment',
            );
            return current;
          }
          this.logger.warn(
            { err: error, paymentId: payment.id, bookingId },
            'Gateway failed during authorization; the payment stays pending for a retry or the reconciler',
          );
          throw PaymentError.gatewayFailed(error.answered, error.message);
        }
        throw error;
      }
    });
    return this.answer(settled);
  }

  /** GET /bookings/{id}/payments: the booking's payments, oldest first. */
  async list(customer: AuthenticatedCustomer, bookingId: string): Promise<PaymentDto[]> {
    await this.bookings.assertOwned(customer, bookingId);
    const rows = await this.dataSource.query<PaymentRow[]>(
      `SELECT ${PAYMENT_COLUMNS} FROM payments WHERE booking_id = $1 ORDER BY created_at, id`,
      [bookingId],
    );
    return rows.map(toDto);
  }

  /**
   * A verified gateway event. The event id is recorded in the transaction of its effect, so a
   * duplicate does nothing and a crash before commit lets the gateway's retry apply it. Answers
   * false for a duplicate.
   */
  async applyGatewayEvent(event: {
    id: string;
    type: string;
    object: { id?: unknown; status?: unknown; metadata?: unknown };
  }): Promise<boolean> {
    // Other events (our own captures, voids and refunds echoed back) change nothing here, so they
    // need neither a transaction nor de-duplication.
    if (!EFFECTIVE_EVENTS.has(event.type)) return true;
    const intentId = typeof event.object.id === 'string' ? event.object.id : null;
    const metadata = (event.object.metadata ?? {}) as Record<string, unknown>;
    const paymentId =
      typeof metadata.paymentId === 'string' && UUID.test(metadata.paymentId)
        ? metadata.paymentId
        : null;
    const outcome = await inTransaction(this.dataSource, async (manager) => {
      const [fresh] = await manager.query<unknown[]>(
        `INSERT INTO gateway_events (id, type) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING id`,
        [event.id, event.type],
      );
      if (!fresh) return { duplicate: true, payment: null };
      // By intent first; by our own id (the intent's metadata) when the intent is not recorded yet
      // (the request that created it crashed or is still running). Both are unique index lookups.
      let [payment] = await manager.query<PaymentRow[]>(
        `SELECT ${PAYMENT_COLUMNS} FROM payments WHERE gateway_intent_id = $1 FOR UPDATE`,
        [intentId],
      );
      if (!payment && paymentId) {
        [payment] = await manager.query<PaymentRow[]>(
          `SELECT ${PAYMENT_COLUMNS} FROM payments
           WHERE id = $1 AND gateway_intent_id IS NULL FOR UPDATE`,
          [paymentId],
        );
      }
      if (!payment) {
        this.logger.warn(
          { eventId: event.id, type: event.type, intentId },
          'Gateway event for an unknown payment; acknowledged and ignored',
        );
        return { duplicate: false, payment: null };
      }
      return {
        duplicate: false,
        payment: await this.applyEvent(manager, payment, event, intentId),
      };
    });
    if (outcome.payment?.next_action) {
      await this.settleNow(outcome.payment);
    }
    return !outcome.duplicate;
  }

  /**
   * One reconciliation pass: finishes payments whose next step a crash, an outage or a lost lock
   * left undone. Steps that may still be running in a request are left alone for `graceMs`.
   */
  async reconcile(graceMs: number, signal?: AbortSignal, batchSize = 50): Promise<number> {
    const due = await this.dataSource.query<PaymentRow[]>(
      `SELECT ${PAYMENT_COLUMNS} FROM payments
       WHERE next_action IS NOT NULL AND updated_at < now() - $1 * interval '1 millisecond'
       ORDER BY updated_at LIMIT $2`,
      [graceMs, batchSize],
    );
    // Asynchronous authorizations whose webhook never came: ask the gateway.
    const stale = await this.dataSource.query<PaymentRow[]>(
      `SELECT ${PAYMENT_COLUMNS} FROM payments
       WHERE status = 'pending' AND next_action IS NULL AND gateway_intent_id IS NOT NULL
         AND updated_at < now() - $1 * interval '1 millisecond'
       ORDER BY updated_at LIMIT $2`,
      [Math.max(graceMs, ASYNC_STALE_MS), batchSize],
    );
    for (const payment of stale) {
      if (signal?.aborted) break;
      try {
        const intent = await this.gateway.retrieve(this.intentOf(payment), signal);
        if (intent.status === 'processing') {
          await this.dataSource.query(
            `UPDATE payments SET updated_at = clock_timestamp() WHERE id = $1`,
            [payment.id],
          );
        } else {
          due.push(await this.recordIntent(payment, null, intent));
        }
      } catch (error) {
        this.logger.warn(
          { err: error, paymentId: payment.id },
          'Could not ask the gateway about a pending payment',
        );
      }
    }
    let finished = 0;
    for (const payment of due) {
      if (!payment.next_action) continue;
      if (signal?.aborted) break;
      const action = payment.next_action;
      try {
        const done = await this.underPaymentLock(
          payment.booking_id,
          async (leaseSignal) => this.advance(await this.reload(payment.id), leaseSignal),
          true,
        );
        if (done) {
          finished += 1;
          this.metrics.reconciled.inc({ action });
          this.logger.log(
            { paymentId: payment.id, action, status: done.status },
            'Reconciler finished a payment step',
          );
        }
      } catch (error) {
        this.logger.warn(
          { err: error, paymentId: payment.id, action },
          'Reconciler could not finish a payment step; retrying next pass',
        );
      }
    }
    return finished;
  }

  /** Creates the payment, or resumes it when this is a retry of the same request. */
  private async start(
    booking: PayableBooking,
    paymentMethod: string,
    idempotencyKey: string,
  ): Promise<PaymentRow> {
    // Derived from the customer's key, so a retry after a 5xx reaches the same authorization.
    const gatewayKey = `seatlock-${createHash('sha256')
      .update(`${booking.customerId}\n${idempotencyKey}\n${booking.id}\n${paymentMethod}`)
      .digest('hex')}`;
    const [row] = await this.dataSource.query<PaymentRow[]>(
      `INSERT INTO payments (id, booking_id, customer_id, status, next_action, amount_cents,
                             currency, payment_method, fence, gateway_idempotency_key)
       VALUES ($1, $2, $3, 'pending', 'authorize', $4, $5, $6, $7, $8)
       ON CONFLICT (gateway_idempotency_key) DO UPDATE SET attempts = payments.attempts + 1
       RETURNING ${PAYMENT_COLUMNS}`,
      [
        randomUUID(),
        booking.id,
        booking.customerId,
        booking.amountCents,
        booking.currency,
        paymentMethod,
        booking.fence,
        gatewayKey,
      ],
    );
    return row;
  }

  /** Runs every step still owed, in order, until none is left or the gateway must be waited for. */
  private async advance(payment: PaymentRow, signal?: AbortSignal): Promise<PaymentRow> {
    let current = payment;
    for (;;) {
      signal?.throwIfAborted();
      switch (current.next_action) {
        case null:
          return current;
        case 'authorize':
          current = await this.authorize(current, signal);
          break;
        case 'confirm':
          current = await this.confirm(current);
          break;
        case 'capture':
          current = await this.capture(current, signal);
          break;
        case 'void':
          current = await this.voidAuthorization(current, signal);
          break;
        case 'refund':
          current = await this.refund(current, signal);
          break;
      }
    }
  }

  private async authorize(payment: PaymentRow, signal?: AbortSignal): Promise<PaymentRow> {
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
        return this.fail(payment, 'authorize', error.declineCode, error.reason, error.intent?.id);
      }
      if (error instanceof GatewayRejectedError) {
        // The gateway refused the request itself (e.g. an unknown payment method).
        return this.fail(payment, 'authorize', REJECTED, error.message, error.intent?.id);
      }
      throw error;
    }
    return this.recordIntent(payment, 'authorize', intent);
  }

  /** Applies what the gateway says of an authorization: the next step follows from it. */
  private recordIntent(
    payment: PaymentRow,
    expected: PaymentAction | null,
    intent: GatewayIntent,
  ): Promise<PaymentRow> {
    switch (intent.status) {
      case 'authorized':
      case 'captured': {
        const status = intent.status;
        return this.step(payment.id, expected, {
          status,
          next_action: 'confirm',
          gateway_intent_id: intent.id,
        });
      }
      case 'processing':
        // An asynchronous card: the gateway's webhook (or the reconciler) continues from here.
        return this.step(payment.id, expected, { next_action: null, gateway_intent_id: intent.id });
      default:
        return this.fail(
          payment,
          expected,
          intent.declineCode ?? intent.status,
          intent.message ?? `the gateway reports the authorization ${intent.status}`,
          intent.id,
        );
    }
  }

  /** A declined or refused authorization: failed, and the customer told, in one transaction. */
  private fail(
    payment: PaymentRow,
    expected: PaymentAction | null,
    code: string,
    reason: string,
    intentId: string | undefined,
  ): Promise<PaymentRow> {
    this.metrics.outcomes.inc({ outcome: code === REJECTED ? 'rejected' : 'declined' });
    const changes = {
      status: 'failed' as const,
      next_action: null,
      failure_code: code,
      failure_message: reason,
      gateway_intent_id: intentId ?? payment.gateway_intent_id,
    };
    // A refused request (not a refused card) is the caller's mistake, not news for the booking.
    if (code === REJECTED) return this.step(payment.id, expected, changes);
    return this.step(payment.id, expected, changes, (manager, row) =>
      this.bookings.recordPaymentEvent(
        manager,
        row.booking_id,
        'payment.declined',
        `Payment of ${formatAmount(row)} declined (${code}): ${reason}`,
        { payment: toDto(row) },
      ),
    );
  }

  /** The fenced confirm: the booking and its seats, or the decision to give the money back. */
  private confirm(payment: PaymentRow): Promise<PaymentRow> {
    return this.lockedStep(payment.id, 'confirm', async (manager, current) => {
      const { confirmed, booking } = await this.bookings.confirmPaid(
        manager,
        current.booking_id,
        current.fence,
        current.id,
      );
      const captured = current.status === 'captured';
      if (confirmed) {
        return this.update(manager, current.id, { next_action: captured ? null : 'capture' });
      }
      this.metrics.outcomes.inc({ outcome: SEAT_LOST });
      const reason = seatLostReason(booking);
      this.logger.warn(
        { paymentId: current.id, bookingId: current.booking_id, bookingStatus: booking.status },
        'Payment lost its seat; the money goes back',
      );
      return this.update(manager, current.id, {
        next_action: captured ? 'refund' : 'void',
        failure_code: SEAT_LOST,
        failure_message: `Not booked: ${reason}`,
      });
    });
  }

  private async capture(payment: PaymentRow, signal?: AbortSignal): Promise<PaymentRow> {
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
      return this.step(payment.id, 'capture', {
        status: 'failed',
        next_action: null,
        failure_code: CAPTURE_FAILED,
        failure_message: `The gateway could not capture: the authorization is ${intent.status}`,
      });
    }
    this.metrics.outcomes.inc({ outcome: 'captured' });
    return this.step(payment.id, 'capture', { status: 'captured', next_action: null });
  }

  private async voidAuthorization(payment: PaymentRow, signal?: AbortSignal): Promise<PaymentRow> {
    if (!payment.gateway_intent_id) {
      return this.step(payment.id, 'void', { status: 'voided', next_action: null });
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
      return this.step(payment.id, 'void', { status: 'captured', next_action: 'refund' });
    }
    return this.step(payment.id, 'void', { status: 'voided', next_action: null }, (manager, row) =>
      this.bookings.recordPaymentEvent(
        manager,
        row.booking_id,
        'payment.voided',
        `Authorization of ${formatAmount(row)} voided; nothing was charged. ${row.failure_message ?? ''}`.trim(),
        { payment: toDto(row) },
      ),
    );
  }

  private async refund(payment: PaymentRow, signal?: AbortSignal): Promise<PaymentRow> {
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
          return this.step(payment.id, 'refund', { status: 'authorized', next_action: 'void' });
        }
        const intent = await this.gateway.retrieve(this.intentOf(payment), signal);
        if (intent.amountRefundedCents < intent.amountCents) throw error;
      }
    }
    this.metrics.outcomes.inc({ outcome: 'refunded' });
    return this.step(
      payment.id,
      'refund',
      { status: 'refunded', next_action: null, refunded_cents: payment.amount_cents },
      (manager, row) =>
        this.bookings.recordPaymentEvent(
          manager,
          row.booking_id,
          'payment.refunded',
          `Refunded ${formatAmount(row)}. ${row.failure_message ?? ''}`.trim(),
          { payment: toDto(row) },
        ),
    );
  }

  /**
   * Moves the payment on only if its next step is still `expected`: one conditional UPDATE (the row
   * count decides, as for seats), plus `also` in the same transaction when it has a fact to record.
   * If someone else (a webhook, the reconciler, a retry) moved it on meanwhile, nothing changes and
   * its current state is returned, for the caller's loop to continue from.
   */
  private async step(
    paymentId: string,
    expected: PaymentAction | null,
    changes: PaymentChanges,
    also?: (manager: EntityManager, row: PaymentRow) => Promise<void>,
  ): Promise<PaymentRow> {
    const write = async (manager: EntityManager): Promise<PaymentRow | undefined> => {
      const row = await this.updateIf(manager, paymentId, changes, expected);
      if (row && also) await also(manager, row);
      return row;
    };
    const row = also
      ? await inTransaction(this.dataSource, write)
      : await write(this.dataSource.manager);
    return row ?? this.reload(paymentId);
  }

  /**
   * Like `step`, for a change that must first read the payment and other rows under its lock (the
   * fenced confirm decides the next step from what the booking says).
   */
  private lockedStep(
    paymentId: string,
    expected: PaymentAction | null,
    change: (manager: EntityManager, current: PaymentRow) => Promise<PaymentRow>,
  ): Promise<PaymentRow> {
    return inTransaction(this.dataSource, async (manager) => {
      const [current] = await manager.query<PaymentRow[]>(
        `SELECT ${PAYMENT_COLUMNS} FROM payments WHERE id = $1 FOR UPDATE`,
        [paymentId],
      );
      if (current.next_action !== expected) return current;
      return change(manager, current);
    });
  }

  /** Writes `changes` to a payment the caller holds locked. */
  private async update(
    manager: EntityManager,
    paymentId: string,
    changes: PaymentChanges,
  ): Promise<PaymentRow> {
    const row = await this.write(manager, paymentId, changes, '', []);
    if (!row) throw new Error(`payment ${paymentId} vanished`);
    return row;
  }

  /** Writes `changes` only while the payment's next step is still `expected`. */
  private updateIf(
    manager: EntityManager,
    paymentId: string,
    changes: PaymentChanges,
    expected: PaymentAction | null,
  ): Promise<PaymentRow | undefined> {
    return this.write(manager, paymentId, changes, 'AND next_action IS NOT DISTINCT FROM $2', [
      expected,
    ]);
  }

  private async write(
    manager: EntityManager,
    paymentId: string,
    changes: PaymentChanges,
    condition: string,
    conditionValues: unknown[],
  ): Promise<PaymentRow | undefined> {
    const columns = Object.keys(changes);
    const offset = 2 + conditionValues.length;
    const assignments = columns.map((column, i) => `${column} = $${i + offset}`).join(', ');
    const [[row]] = await manager.query<[PaymentRow[], number]>(
      `UPDATE payments SET ${assignments}, updated_at = clock_timestamp()
       WHERE id = $1 ${condition} RETURNING ${PAYMENT_COLUMNS}`,
      [
        paymentId,
        ...conditionValues,
        ...columns.map((column) => changes[column as keyof PaymentChanges]),
      ],
    );
    return row;
  }

  private async reload(paymentId: string): Promise<PaymentRow> {
    const [row] = await this.dataSource.query<PaymentRow[]>(
      `SELECT ${PAYMENT_COLUMNS} FROM payments WHERE id = $1`,
      [paymentId],
    );
    return row;
  }

  private intentOf(payment: PaymentRow): string {
    if (!payment.gateway_intent_id) {
      throw new Error(`payment ${payment.id} has no gateway intent to ${payment.next_action}`);
    }
    return payment.gateway_intent_id;
  }

  /** What a gateway event changes; returns the payment as it is afterwards. */
  private async applyEvent(
    manager: EntityManager,
    payment: PaymentRow,
    event: { id: string; type: string; object: { status?: unknown } },
    intentId: string | null,
  ): Promise<PaymentRow> {
    // Only a payment still waiting for the gateway's decision learns anything from these events;
    // the rest (captures, cancels, refunds we made ourselves) are acknowledged as they are.
    // An authorization for a payment already over (failed, voided) is not wanted: give it back.
    if (
      event.type === 'payment_intent.succeeded' &&
      ['failed', 'voided'].includes(payment.status) &&
      payment.next_action === null
    ) {
      this.logger.warn(
        { paymentId: payment.id, status: payment.status },
        'Late authorization for a payment that is over; voiding it',
      );
      return this.update(manager, payment.id, {
        status: 'authorized',
        next_action: event.object.status === 'succeeded' ? 'refund' : 'void',
        gateway_intent_id: intentId ?? payment.gateway_intent_id,
      });
    }
    // A request still authorizing (or one that crashed doing so) learns the outcome from it too.
    if (
      payment.status !== 'pending' ||
      !(payment.next_action === null || payment.next_action === 'authorize')
    ) {
      return payment;
    }
    if (event.type === 'payment_intent.succeeded') {
      const captured = event.object.status === 'succeeded';
      return this.update(manager, payment.id, {
        status: captured ? 'captured' : 'authorized',
        next_action: 'confirm',
        gateway_intent_id: intentId ?? payment.gateway_intent_id,
      });
    }
    if (event.type === 'payment_intent.payment_failed') {
      const error = (event.object as { last_payment_error?: Record<string, unknown> })
        .last_payment_error;
      const code = String(error?.decline_code ?? error?.code ?? 'declined');
      const reason = String(error?.message ?? 'The card was declined.');
      this.metrics.outcomes.inc({ outcome: 'declined' });
      const row = await this.update(manager, payment.id, {
        status: 'failed',
        next_action: null,
        failure_code: code,
        failure_message: reason,
        gateway_intent_id: intentId ?? payment.gateway_intent_id,
      });
      await this.bookings.recordPaymentEvent(
        manager,
        row.booking_id,
        'payment.declined',
        `Payment of ${formatAmount(row)} declined (${code}): ${reason}`,
        { payment: toDto(row) },
      );
      return row;
    }
    return payment;
  }

  /** Finishes a payment's owed steps now, under its lock; what fails is the reconciler's. */
  private async settleNow(payment: PaymentRow): Promise<void> {
    try {
      await this.underPaymentLock(
        payment.booking_id,
        async (signal) => this.advance(await this.reload(payment.id), signal),
        true,
      );
    } catch (error) {
      this.logger.warn(
        { err: error, paymentId: payment.id },
        'Payment step not finished now; the reconciler will',
      );
    }
  }

  /** In the cancelling transaction: the booking's money is owed back (void or refund). */
  private async owePaybackForCancellation(
    manager: EntityManager,
    bookingId: string,
  ): Promise<void> {
    await manager.query(
      `UPDATE payments
       SET next_action = CASE WHEN status = 'captured' THEN 'refund' ELSE 'void' END,
           failure_code = $2, failure_message = $3, updated_at = clock_timestamp()
       WHERE booking_id = $1 AND status IN ('authorized', 'captured')`,
      [bookingId, BOOKING_CANCELLED, 'The booking was cancelled by the customer'],
    );
  }

  /** After a cancellation committed: refund or void now, so the answer shows it done. */
  private async settleBooking(bookingId: string): Promise<void> {
    const owed = await this.dataSource.query<PaymentRow[]>(
      `SELECT ${PAYMENT_COLUMNS} FROM payments WHERE booking_id = $1 AND next_action IS NOT NULL`,
      [bookingId],
    );
    for (const payment of owed) await this.settleNow(payment);
  }

  /**
   * Runs `work` under the booking's payment lock. Busy: 409 for a request, null for background work
   * (`skipIfBusy`). Redis unreachable or off: runs anyway, since every step is a conditional write
   * on the payment row and every gateway call is idempotent; the lock only keeps retries apart.
   */
  private async underPaymentLock<T>(
    bookingId: string,
    work: (signal?: AbortSignal) => Promise<T>,
    skipIfBusy = false,
  ): Promise<T | null> {
    return this.lock.usingOrAlone(
      paymentLockKey(bookingId),
      { ttlMs: PAYMENT_LOCK_TTL_MS },
      work,
      () => {
        if (skipIfBusy) return null;
        throw PaymentError.inProgress();
      },
    );
  }

  /** The request's answer: 201 with payment and booking, or the error that says what happened. */
  private async answer(payment: PaymentRow | null): Promise<PaymentResultDto> {
    if (!payment) throw PaymentError.inProgress();
    const booking = await this.bookings.find(payment.booking_id);
    const dto = toDto(payment);
    if (payment.status === 'failed' && payment.failure_code !== CAPTURE_FAILED) {
      const reason = payment.failure_message ?? 'refused by the gateway';
      throw payment.failure_code === REJECTED
        ? PaymentError.rejected(reason, dto)
        : PaymentError.declined(payment.failure_code ?? 'declined', reason, dto);
    }
    if (payment.failure_code === SEAT_LOST) {
      throw PaymentError.seatLost(
        `${payment.failure_message ?? 'Not booked'}; the authorization is ${
          payment.status === 'refunded'
            ? 'refunded'
            : payment.status === 'voided'
              ? 'voided'
              : 'being voided'
        }`,
        dto,
        booking?.dto,
      );
    }
    if (!booking) throw new Error(`payment ${payment.id} has no booking`);
    return { payment: dto, booking: booking.dto };
  }
}
