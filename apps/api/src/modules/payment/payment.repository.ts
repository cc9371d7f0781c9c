import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, type EntityManager } from 'typeorm';
import type { IdempotentRequest, RefusedClaim } from '../../common/idempotency/idempotent-request';
import type { IdempotencyClaim } from '../../common/idempotency/idempotency.repository';
import { IDEMPOTENCY_RETENTION_HOURS } from '../../common/idempotency/idempotency-headers';
import type { BookingDto } from '../booking/dto/booking.dto';
import type { PaymentDto } from './dto/payment.dto';

export type PaymentStatus =
  'pending' | 'authorized' | 'captured' | 'voided' | 'refunded' | 'failed';

/** What is still owed to the gateway; decided in the transaction that decided it. */
export type PaymentAction = 'authorize' | 'confirm' | 'capture' | 'void' | 'refund';

/** A payments row as `seatlock_payment_row()` gives it: 64-bit numbers as strings. */
export interface PaymentRow {
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
  attempts: number;
  created_at: string;
  /** With its microseconds: the version a conditional step compares, so a step never writes blind. */
  updated_at: string;
}

export type PaymentChanges = Partial<
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

/** The outcome of the first statement of a payment request. */
export type PaymentStart =
  | { kind: 'refused'; claim: RefusedClaim }
  | { kind: 'not_found' }
  | { kind: 'not_payable'; bookingStatus: string }
  | { kind: 'started'; payment: PaymentRow; booking: BookingDto };

/** The outcome of the fenced confirm. */
export interface ConfirmOutcome {
  outcome: 'confirmed' | 'seat_lost' | 'moved_on';
  payment: PaymentRow;
  booking: BookingDto | null;
}

/** A fact a step records on the booking's timeline and in the outbox, with the payment. */
export interface BookingFact {
  type: string;
  detail: string;
}

/** What rides along in a step's statement. */
export interface StepExtras {
  /** The booking fact the step records (timeline and outbox), with the payment as it is after. */
  fact?: BookingFact;
  /** The gateway event the step applies, recorded for de-duplication. */
  event?: { id: string; type: string };
  /** The request's answer, stored for replays. */
  answer?: { request: IdempotentRequest; body: unknown };
}

const ROW = 'seatlock_payment_row(p) AS row';

export function toPaymentDto(row: PaymentRow): PaymentDto {
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
    createdAt: row.created_at,
  };
}

/**
 * The payments table (and gateway_events, its log of applied gateway events). Every write is one
 * statement: the start and the fenced confirm are SQL functions (database/functions/); the
 * other steps are one conditional UPDATE whose timeline, outbox, event and answer rows ride along
 * in the same statement.
 */
@Injectable()
export class PaymentRepository {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  /** Claims the request's key, checks the booking is payable, creates (or resumes) the payment. */
  async start(
    request: IdempotentRequest,
    bookingId: string,
    paymentId: string,
    paymentMethod: string,
    gatewayKey: string,
  ): Promise<PaymentStart> {
    const [row] = await this.dataSource.query<
      {
        claim: IdempotencyClaim['kind'];
        response_status: number | null;
        response_body: string | null;
        booking: BookingDto | null;
        booking_status: string | null;
        payment: PaymentRow | null;
      }[]
    >(
      `SELECT claim, response_status, response_body, booking, booking_status, payment
       FROM seatlock_payment_start($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
      [
        request.customerId,
        bookingId,
        request.key,
        request.fingerprint,
        request.leaseMs,
        IDEMPOTENCY_RETENTION_HOURS,
        paymentId,
        paymentMethod,
        gatewayKey,
      ],
    );
    if (row.claim !== 'claimed') {
      const claim: RefusedClaim =
        row.claim === 'completed'
          ? {
              kind: 'completed',
              status: row.response_status ?? 500,
              body: row.response_body === null ? null : JSON.parse(row.response_body),
            }
          : { kind: row.claim };
      return { kind: 'refused', claim };
    }
    if (!row.booking) return { kind: 'not_found' };
    if (!row.payment)
      return { kind: 'not_payable', bookingStatus: row.booking_status ?? 'unknown' };
    return { kind: 'started', payment: row.payment, booking: row.booking };
  }

  /** The fenced confirm; with `authorized`, the authorization that led to it is recorded too. */
  async confirm(
    paymentId: string,
    expected: PaymentAction | null,
    authorized?: { status: 'authorized' | 'captured'; intentId: string },
  ): Promise<ConfirmOutcome> {
    const [row] = await this.dataSource.query<ConfirmOutcome[]>(
      `SELECT outcome, payment, booking FROM seatlock_payment_confirm($1, $2, $3, $4)`,
      [paymentId, expected, authorized?.status ?? null, authorized?.intentId ?? null],
    );
    return row;
  }

  /**
   * Moves the payment on only if it is still exactly `before` (same next step, same version): one
   * conditional UPDATE, with in the same statement the booking fact it records (with the payment as
   * it is afterwards), the gateway event it applies, and the request's stored answer. Answers null
   * when someone else (a webhook, the reconciler, a retry) moved the payment on meanwhile.
   */
  async step(
    before: PaymentRow,
    changes: PaymentChanges,
    also: StepExtras = {},
  ): Promise<{ payment: PaymentRow; answered: boolean } | null> {
    const after: PaymentRow = { ...before, ...changes };
    const columns = Object.keys(changes) as (keyof PaymentChanges)[];
    const values: unknown[] = [before.id, before.updated_at, ...columns.map((c) => changes[c])];
    const param = (value: unknown): string => `$${values.push(value)}`;
    const ctes = [
      `p AS (UPDATE payments SET ${columns.map((c, i) => `${c} = $${i + 3}`).join(', ')},
               updated_at = clock_timestamp()
             WHERE id = $1 AND updated_at = $2::timestamptz RETURNING *)`,
    ];
    const outputs = [ROW];
    if (also.fact) {
      ctes.push(`f AS (SELECT seatlock_record_booking_event(b, ${param(also.fact.type)},
                 ${param(also.fact.detail)}, ${param(
                   // The payload's shape since the first payment facts: {booking, payment: {payment}}.
                   JSON.stringify({ payment: { payment: toPaymentDto(after) } }),
                 )}::jsonb) FROM p JOIN bookings b ON b.id = p.booking_id)`);
      outputs.push('(SELECT count(*) FROM f) AS recorded');
    }
    if (also.event) {
      ctes.push(`e AS (INSERT INTO gateway_events (id, type)
                 SELECT ${param(also.event.id)}, ${param(also.event.type)} FROM p
                 ON CONFLICT DO NOTHING)`);
    }
    if (also.answer) {
      const { request, body } = also.answer;
      ctes.push(`a AS (SELECT seatlock_idempotency_complete(${param(request.customerId)},
                 ${param(request.key)}, ${param(request.successStatus)},
                 ${param(JSON.stringify(body ?? null))}) AS done FROM p)`);
      outputs.push('(SELECT bool_or(done) FROM a) AS answered');
    }
    const [row] = await this.dataSource.query<{ row: PaymentRow; answered?: boolean }[]>(
      `WITH ${ctes.join(',\n')} SELECT ${outputs.join(', ')} FROM p`,
      values,
    );
    return row ? { payment: row.row, answered: row.answered === true } : null;
  }

  /**
   * Records a gateway event that changes nothing here, for de-duplication; false when it was
   * already recorded.
   */
  async recordEvent(event: { id: string; type: string }): Promise<boolean> {
    const rows = await this.dataSource.query<unknown[]>(
      `INSERT INTO gateway_events (id, type) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING 1`,
      [event.id, event.type],
    );
    return rows.length > 0;
  }

  /**
   * The payment a gateway event is about, by intent first, by our own id (the intent's metadata)
   * when the intent is not recorded yet; and whether the event was applied already.
   */
  async findForEvent(
    eventId: string,
    intentId: string | null,
    paymentId: string | null,
  ): Promise<{ payment: PaymentRow | null; seen: boolean }> {
    const [row] = await this.dataSource.query<{ row: PaymentRow | null; seen: boolean }[]>(
      `SELECT (SELECT seatlock_payment_row(p) FROM payments p
                WHERE p.gateway_intent_id = $2
                   OR (p.id = $3 AND p.gateway_intent_id IS NULL)
                ORDER BY p.gateway_intent_id IS NULL LIMIT 1) AS row,
              EXISTS (SELECT 1 FROM gateway_events WHERE id = $1) AS seen`,
      [eventId, intentId, paymentId],
    );
    return { payment: row.row, seen: row.seen };
  }

  /**
   * The payment as an actor other than its request (the reconciler, a webhook, a cancellation)
   * takes it on, under its lock. One still owing its authorization is marked taken on
   * (attempts + 1) in the same statement, so the request that created it, finding the lock busy,
   * no longer deletes it as never sent while the gateway authorizes it (docs/model.md, F1). The
   * version (updated_at) is left alone. Null when the payment is gone (discarded before).
   */
  async claim(paymentId: string): Promise<PaymentRow | null> {
    const [taken] = await this.dataSource.query<{ row: PaymentRow }[]>(
      // A SELECT around the UPDATE: TypeORM answers a bare UPDATE with [rows, count].
      `WITH taken AS (
         UPDATE payments p SET attempts = attempts + 1
         WHERE id = $1 AND next_action = 'authorize' RETURNING ${ROW})
       SELECT row FROM taken`,
      [paymentId],
    );
    // Otherwise a new statement, so a row deleted while the UPDATE waited for it is seen gone.
    return taken ? taken.row : this.find(paymentId);
  }

  async get(paymentId: string): Promise<PaymentRow> {
    const row = await this.find(paymentId);
    if (!row) throw new Error(`payment ${paymentId} not found`);
    return row;
  }

  private async find(paymentId: string): Promise<PaymentRow | null> {
    const [row] = await this.dataSource.query<{ row: PaymentRow }[]>(
      `SELECT ${ROW} FROM payments p WHERE id = $1`,
      [paymentId],
    );
    return row?.row ?? null;
  }

  /** A booking's payments, oldest first. */
  async listByBooking(bookingId: string): Promise<PaymentRow[]> {
    const rows = await this.dataSource.query<{ row: PaymentRow }[]>(
      `SELECT ${ROW} FROM payments p WHERE booking_id = $1 ORDER BY created_at, id`,
      [bookingId],
    );
    return rows.map((r) => r.row);
  }

  /** A booking's payments that still owe the gateway a step. */
  async owingByBooking(bookingId: string): Promise<PaymentRow[]> {
    const rows = await this.dataSource.query<{ row: PaymentRow }[]>(
      `SELECT ${ROW} FROM payments p WHERE booking_id = $1 AND next_action IS NOT NULL`,
      [bookingId],
    );
    return rows.map((r) => r.row);
  }

  /** Payments whose next step is older than `graceMs` (a request would have finished it). */
  async due(graceMs: number, limit: number): Promise<PaymentRow[]> {
    const rows = await this.dataSource.query<{ row: PaymentRow }[]>(
      `SELECT ${ROW} FROM payments p
       WHERE next_action IS NOT NULL AND updated_at < now() - $1 * interval '1 millisecond'
       ORDER BY updated_at LIMIT $2`,
      [graceMs, limit],
    );
    return rows.map((r) => r.row);
  }

  /**
   * When the reconciler is next needed (epoch ms): the oldest step left undone, `graceMs` after it
   * was last touched, or the oldest unsettled asynchronous authorization, `staleMs` after; null when
   * neither exists. Both read a partial index.
   */
  async nextDue(graceMs: number, staleMs: number): Promise<number | null> {
    const [row] = await this.dataSource.query<{ at: Date | null }[]>(
      `SELECT least(
         (SELECT min(updated_at) FROM payments WHERE next_action IS NOT NULL)
           + $1 * interval '1 millisecond',
         (SELECT min(updated_at) FROM payments
           WHERE status = 'pending' AND next_action IS NULL AND gateway_intent_id IS NOT NULL)
           + $2 * interval '1 millisecond') AS at`,
      [graceMs, staleMs],
    );
    return row?.at ? row.at.getTime() : null;
  }

  /** Asynchronous authorizations the gateway has not settled for `olderThanMs`. */
  async stalePending(olderThanMs: number, limit: number): Promise<PaymentRow[]> {
    const rows = await this.dataSource.query<{ row: PaymentRow }[]>(
      `SELECT ${ROW} FROM payments p
       WHERE status = 'pending' AND next_action IS NULL AND gateway_intent_id IS NOT NULL
         AND updated_at < now() - $1 * interval '1 millisecond'
       ORDER BY updated_at LIMIT $2`,
      [olderThanMs, limit],
    );
    return rows.map((r) => r.row);
  }

  /** Asked about, still processing: the next look is one interval later. */
  async touch(paymentId: string): Promise<void> {
    await this.dataSource.query(
      `UPDATE payments SET updated_at = clock_timestamp() WHERE id = $1`,
      [paymentId],
    );
  }

  /**
   * A payment created by a request that then found another payment of its booking running: it
   * never reached the gateway, so it goes (a resumed payment, with its older id, is left alone;
   * so is one another actor has claimed and may be authorizing: attempts > 0).
   */
  async discard(paymentId: string): Promise<void> {
    await this.dataSource.query(
      `DELETE FROM payments
       WHERE id = $1 AND next_action = 'authorize' AND gateway_intent_id IS NULL AND attempts = 0`,
      [paymentId],
    );
  }

  /** In a cancelling transaction: the booking's money is owed back (void or refund). */
  async owePayback(
    manager: EntityManager,
    bookingId: string,
    code: string,
    reason: string,
  ): Promise<void> {
    await manager.query(
      `UPDATE payments
       SET next_action = CASE WHEN status = 'captured' THEN 'refund' ELSE 'void' END,
           failure_code = $2, failure_message = $3, updated_at = clock_timestamp()
       WHERE booking_id = $1 AND status IN ('authorized', 'captured')`,
      [bookingId, code, reason],
    );
  }
}
