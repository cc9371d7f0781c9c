import { Injectable } from '@nestjs/common';
import { DataSource, type EntityManager } from 'typeorm';
import type { Page } from '../../common/pagination/page';
import type { ClaimedMessage, DeliveryOutcome, DueDelivery } from './outbox-channel';

/** The LISTEN/NOTIFY channel a fan-out that wrote delivery rows notifies on commit. */
export const DELIVERY_CHANNEL = 'deliveries';

export type DeliveryStatus = 'pending' | 'delivered' | 'dead' | 'cancelled';

/** A delivery the worker claimed, with the message it carries. */
export interface ClaimedDelivery {
  delivery: DueDelivery;
  message: ClaimedMessage;
}

/** One row of an endpoint's deliveries log, attempts included. */
export interface DeliveryLogEntry {
  id: string;
  messageId: string;
  eventType: string;
  status: DeliveryStatus;
  attempts: number;
  nextAttemptAt: Date;
  lastError: string | null;
  deliveredAt: Date | null;
  createdAt: Date;
  log: {
    attempt: number;
    statusCode: number | null;
    latencyMs: number;
    error: string | null;
    at: string;
  }[];
}

interface ClaimedRow {
  id: string;
  message_id: string;
  channel: string;
  target: string;
  endpoint_id: string | null;
  attempts: number;
  topic: string;
  customer_id: string | null;
  aggregate_id: string | null;
  payload: Record<string, unknown>;
  message_attempts: number;
  message_created_at: Date;
}

interface LogRow {
  id: string;
  message_id: string;
  topic: string;
  status: DeliveryStatus;
  attempts: number;
  next_attempt_at: Date;
  last_error: string | null;
  delivered_at: Date | null;
  created_at: Date;
  log: DeliveryLogEntry['log'];
}

/** What one attempt changed: the delivery's new status, or null when the claim had been lost. */
export interface RecordedAttempt {
  status: DeliveryStatus;
  /** Attempts made, this one included. */
  attempts: number;
}

/** notification_deliveries and delivery_attempts: claims and outcomes for the worker, logs for customers. */
@Injectable()
export class DeliveryRepository {
  constructor(private readonly dataSource: DataSource) {}

  /**
   * Claims up to `limit` due deliveries of `channels` for `claimToken` until the lease ends, with
   * their messages, in one statement. SKIP LOCKED lets every instance claim at once without waiting
   * on the others; a delivery whose claimer died is due again once its lease has run out.
   */
  async claim(
    claimToken: string,
    limit: number,
    leaseMs: number,
    channels: string[],
  ): Promise<ClaimedDelivery[]> {
    const rows = await this.dataSource.query<ClaimedRow[]>(
      `WITH due AS (
         SELECT id FROM notification_deliveries
         WHERE status = 'pending' AND next_attempt_at <= now() AND channel = ANY($4)
           AND (claimed_until IS NULL OR claimed_until <= now())
         ORDER BY next_attempt_at
         LIMIT $3
         FOR UPDATE SKIP LOCKED
       ), claimed AS (
         UPDATE notification_deliveries d
         SET claimed_by = $1, claimed_until = now() + $2 * interval '1 millisecond'
         FROM due WHERE d.id = due.id
         RETURNING d.id, d.message_id, d.channel, d.target, d.endpoint_id, d.attempts
       )
       SELECT c.*, o.topic, o.customer_id, o.aggregate_id, o.payload,
              o.attempts AS message_attempts, o.created_at AS message_created_at
       FROM claimed c JOIN outbox_messages o ON o.id = c.message_id
       ORDER BY o.created_at`,
      [claimToken, leaseMs, limit, channels],
    );
    return rows.map((row) => ({
      delivery: {
        id: row.id,
        messageId: row.message_id,
        channel: row.channel,
        target: row.target,
        endpointId: row.endpoint_id,
        attempts: row.attempts,
      },
      message: {
        id: row.message_id,
        topic: row.topic,
        customerId: row.customer_id,
        aggregateId: row.aggregate_id,
        payload: row.payload,
        attempts: row.message_attempts,
        createdAt: row.message_created_at,
      },
    }));
  }

  /**
   * Records one attempt and its consequence in one transaction, if `claimToken` still holds the
   * delivery (else another instance took it over after the lease ran out, or it was cancelled: the
   * attempt happened but is theirs to record). Delivered → delivered; gone → cancelled, and the
   * target disabled with all its pending deliveries; failed → pending again after `delayMs`, or dead
   * after `maxAttempts`, which also marks its message dead so GET /admin/outbox?status=dead shows it.
   */
  async recordAttempt(
    delivery: DueDelivery,
    claimToken: string,
    outcome: DeliveryOutcome,
    delayMs: number,
    maxAttempts: number,
  ): Promise<RecordedAttempt | null> {
    const error = outcome.delivered ? null : (outcome.error ?? 'failed').slice(0, 2000);
    return this.dataSource.transaction(async (manager) => {
      const [rows] = await manager.query<[{ status: DeliveryStatus; attempts: number }[], number]>(
        `UPDATE notification_deliveries
         SET attempts = attempts + 1, claimed_by = NULL, claimed_until = NULL, last_error = $3,
             status = CASE WHEN $4 THEN 'delivered' WHEN $5 THEN 'cancelled'
                           WHEN attempts + 1 >= $6 THEN 'dead' ELSE 'pending' END,
             next_attempt_at = now() + $7 * interval '1 millisecond',
             delivered_at = CASE WHEN $4 THEN now() END
         WHERE id = $1 AND claimed_by = $2 AND status = 'pending'
         RETURNING status, attempts`,
        [
          delivery.id,
          claimToken,
          error,
          outcome.delivered,
          outcome.gone === true,
          maxAttempts,
          delayMs,
        ],
      );
      if (rows.length === 0) return null;
      const { status, attempts } = rows[0];
      await manager.query(
        `INSERT INTO delivery_attempts (delivery_id, attempt, status_code, latency_ms, error)
         VALUES ($1, $2, $3, $4, $5)`,
        [delivery.id, attempts, outcome.statusCode ?? null, Math.round(outcome.latencyMs), error],
      );
      if (status === 'dead') {
        await manager.query(
          `UPDATE outbox_messages SET status = 'dead', last_error = $2
           WHERE id = $1 AND status <> 'dead'`,
          [
            delivery.messageId,
            `${delivery.channel} delivery ${delivery.id} to ${delivery.target} dead after ${attempts} attempts: ${error}`.slice(
              0,
              2000,
            ),
          ],
        );
      }
      if (status === 'cancelled') await this.retireTarget(manager, delivery, error ?? 'gone');
      return { status, attempts };
    });
  }

  /** The target said it is gone: never send to it again (a webhook endpoint is disabled). */
  private async retireTarget(
    manager: EntityManager,
    delivery: DueDelivery,
    reason: string,
  ): Promise<void> {
    if (delivery.endpointId) {
      await manager.query(
        `UPDATE webhook_endpoints SET status = 'disabled', disabled_reason = $2, updated_at = now()
         WHERE id = $1 AND status = 'active'`,
        [delivery.endpointId, reason],
      );
      await this.cancelForEndpoint(manager, delivery.endpointId, reason);
      return;
    }
    await manager.query(
      `UPDATE notification_deliveries
       SET status = 'cancelled', last_error = $3, claimed_by = NULL, claimed_until = NULL
       WHERE channel = $1 AND target = $2 AND status = 'pending'`,
      [delivery.channel, delivery.target, `cancelled: ${reason}`],
    );
  }

  /** Cancels an endpoint's pending deliveries (it was deleted or disabled). */
  async cancelForEndpoint(
    manager: EntityManager,
    endpointId: string,
    reason: string,
  ): Promise<number> {
    const [, count] = await manager.query<[unknown[], number]>(
      `UPDATE notification_deliveries
       SET status = 'cancelled', last_error = $2, claimed_by = NULL, claimed_until = NULL
       WHERE endpoint_id = $1 AND status = 'pending'`,
      [endpointId, `cancelled: ${reason}`],
    );
    return count;
  }

  /**
   * Hands a claimed delivery back untouched (the instance is shutting down mid-send): due again at
   * once for whoever runs, without counting an attempt nobody finished.
   */
  async release(id: string, claimToken: string): Promise<void> {
    await this.dataSource.query(
      `UPDATE notification_deliveries SET claimed_by = NULL, claimed_until = NULL
       WHERE id = $1 AND claimed_by = $2 AND status = 'pending'`,
      [id, claimToken],
    );
  }

  /**
   * For the admin retry, in its transaction: dead deliveries of a message are due again with a
   * fresh set of attempts (those of a disabled or deleted endpoint stay dead). Answers how many.
   */
  async revive(manager: EntityManager, messageId: string): Promise<number> {
    const [, count] = await manager.query<[unknown[], number]>(
      `UPDATE notification_deliveries d
       SET status = 'pending', attempts = 0, next_attempt_at = now(), claimed_by = NULL,
           claimed_until = NULL, last_error = NULL
       WHERE d.message_id = $1 AND d.status = 'dead'
         AND (d.endpoint_id IS NULL OR EXISTS (
           SELECT 1 FROM webhook_endpoints e WHERE e.id = d.endpoint_id AND e.status = 'active'))`,
      [messageId],
    );
    return count;
  }

  /** An endpoint's deliveries, newest first, each with its attempts oldest first. */
  async listForEndpoint(
    endpointId: string,
    limit: number,
    offset: number,
  ): Promise<Page<DeliveryLogEntry>> {
    const [rows, [{ total }]] = await Promise.all([
      this.dataSource.query<LogRow[]>(
        `SELECT d.id, d.message_id, o.topic, d.status, d.attempts, d.next_attempt_at, d.last_error,
                d.delivered_at, d.created_at,
                coalesce((
                  SELECT json_agg(json_build_object('attempt', a.attempt, 'statusCode', a.status_code,
                                    'latencyMs', a.latency_ms, 'error', a.error, 'at', a.at)
                                  ORDER BY a.id)
                  FROM delivery_attempts a WHERE a.delivery_id = d.id), '[]'::json) AS log
         FROM notification_deliveries d JOIN outbox_messages o ON o.id = d.message_id
         WHERE d.endpoint_id = $1
         ORDER BY d.created_at DESC, d.id LIMIT $2 OFFSET $3`,
        [endpointId, limit, offset],
      ),
      this.dataSource.query<{ total: number }[]>(
        `SELECT count(*)::int AS total FROM notification_deliveries WHERE endpoint_id = $1`,
        [endpointId],
      ),
    ]);
    return {
      items: rows.map((row) => ({
        id: row.id,
        messageId: row.message_id,
        eventType: row.topic,
        status: row.status,
        attempts: row.attempts,
        nextAttemptAt: row.next_attempt_at,
        lastError: row.last_error,
        deliveredAt: row.delivered_at,
        createdAt: row.created_at,
        log: row.log,
      })),
      total,
    };
  }
}
