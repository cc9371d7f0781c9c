import { Injectable } from '@nestjs/common';
import { DataSource, type EntityManager } from 'typeorm';
import type { Page } from '../../common/pagination/page';
import { inTransaction } from '../../database/in-transaction';
import type { ClaimedMessage, DeliveryOutcome, DueDelivery } from './outbox-channel';
import { WebhookEndpointRepository } from './webhook/webhook-endpoint.repository';

/** The LISTEN/NOTIFY channel a fan-out that wrote delivery rows notifies on commit. */
export const DELIVERY_CHANNEL = 'deliveries';

export type DeliveryStatus = 'pending' | 'delivered' | 'dead' | 'cancelled';

/** How many deliveries of a channel have a status, for the metrics. */
export interface DeliveryCount {
  channel: string;
  status: DeliveryStatus;
  count: number;
}

/** A delivery the worker claimed, with the message it carries. */
export interface ClaimedDelivery {
  delivery: DueDelivery;
  message: ClaimedMessage;
}

/** One send's outcome, to be recorded for the claim that sent it. */
export interface AttemptToRecord {
  delivery: DueDelivery;
  claimToken: string;
  outcome: DeliveryOutcome;
  /** The backoff before the next attempt, if this one failed. */
  delayMs: number;
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
  constructor(
    private readonly dataSource: DataSource,
    private readonly endpoints: WebhookEndpointRepository,
  ) {}

  /**
   * In the fan-out transaction: the message's email delivery, to its customer's address as it is
   * now (the customer module's seatlock_customer_email: none for a customer without one). ON
   * CONFLICT: a message fanned out twice (a lost lease) gets it once. Answers how many addresses
   * there were and how many deliveries this wrote.
   */
  async insertForCustomerEmail(
    manager: EntityManager,
    channel: string,
    message: Pick<ClaimedMessage, 'id' | 'customerId'>,
  ): Promise<{ targets: number; inserted: number }> {
    const [row] = await manager.query<{ targets: number; inserted: number }[]>(
      `WITH target AS (
         SELECT email FROM seatlock_customer_email($3) AS email
       ), inserted AS (
         INSERT INTO notification_deliveries (id, message_id, channel, target)
         SELECT gen_random_uuid(), $1, $2, email FROM target
         ON CONFLICT (message_id, channel, target) DO NOTHING
         RETURNING 1
       )
       SELECT (SELECT count(*) FROM target)::int AS targets,
              (SELECT count(*) FROM inserted)::int AS inserted`,
      [message.id, channel, message.customerId],
    );
    return row;
  }

  /**
   * The same for a batch, as a data-modifying CTE of the dispatcher's statement (OutboxChannel's
   * fanOutStatement): the email deliveries of the messages `messageIds` still in `sent`.
   */
  customerEmailStatement(
    channel: string,
    messageIds: readonly string[],
    param: (value: unknown) => string,
  ): string {
    return `INSERT INTO notification_deliveries (id, message_id, channel, target)
      SELECT gen_random_uuid(), s.id, ${param(channel)}, c.email
      FROM sent s CROSS JOIN LATERAL seatlock_customer_email(s.customer_id) AS c(email)
      WHERE s.id = ANY (${param(messageIds)}::uuid[])
      ON CONFLICT (message_id, channel, target) DO NOTHING RETURNING 1`;
  }

  /**
   * In the fan-out transaction: one delivery per active endpoint of the message's customer
   * subscribed to its topic, oldest endpoint first. ON CONFLICT: a message fanned out twice (a lost
   * lease) gets each delivery once.
   */
  async insertForEndpoints(
    manager: EntityManager,
    channel: string,
    message: Pick<ClaimedMessage, 'id' | 'customerId' | 'topic'>,
  ): Promise<void> {
    const params: unknown[] = [];
    const param = (value: unknown): string => `$${params.push(value)}`;
    const messageId = param(message.id);
    const channelName = param(channel);
    const endpoints = this.endpoints.subscribedSql(
      param(message.customerId),
      param(message.topic),
      param,
    );
    await manager.query(
      `INSERT INTO notification_deliveries (id, message_id, channel, target, endpoint_id)
       SELECT gen_random_uuid(), ${messageId}, ${channelName}, e.url, e.id
       FROM (${endpoints}) e
       ORDER BY e.created_at
       ON CONFLICT (message_id, channel, target) DO NOTHING`,
      params,
    );
  }

  /**
   * The same for a batch, as a data-modifying CTE of the dispatcher's statement (OutboxChannel's
   * fanOutStatement): the endpoints' deliveries of the messages in `sent` whose topic is one of
   * `topics`, in message order.
   */
  endpointsStatement(
    channel: string,
    topics: readonly string[],
    param: (value: unknown) => string,
  ): string {
    return `INSERT INTO notification_deliveries (id, message_id, channel, target, endpoint_id)
      SELECT gen_random_uuid(), s.id, ${param(channel)}, e.url, e.id
      FROM sent s CROSS JOIN LATERAL (${this.endpoints.subscribedSql('s.customer_id', 's.topic', param)}) e
      WHERE s.topic = ANY (${param(topics)}::text[])
      ORDER BY s.created_at, e.created_at
      ON CONFLICT (message_id, channel, target) DO NOTHING RETURNING 1`;
  }

  /**
   * For the metrics scrape: deliveries by channel and status, every status (0 too) for each
   * channel that has deliveries, so alerts on dead > 0 see a series from the first delivery on.
   */
  async countByChannelAndStatus(): Promise<DeliveryCount[]> {
    return this.dataSource.query<DeliveryCount[]>(
      `SELECT c.channel, s.status, count(d.id)::int AS count
       FROM (SELECT DISTINCT channel FROM notification_deliveries) c
       CROSS JOIN unnest(ARRAY['pending', 'delivered', 'dead', 'cancelled']) AS s(status)
       LEFT JOIN notification_deliveries d ON d.channel = c.channel AND d.status = s.status
       GROUP BY c.channel, s.status`,
    );
  }

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
   * Records attempts, many in one statement, each only if its `claimToken` still holds the
   * delivery (else another instance took it over after the lease ran out, or it was cancelled: the
   * attempt happened but is theirs to record). Delivered → delivered; failed → pending again after
   * `delayMs`, or dead after `maxAttempts`, which also marks its message dead so GET
   * /admin/outbox?status=dead shows it; gone → cancelled, and then (rare, its own transaction) the
   * target disabled with all its pending deliveries. Answers in the order of `attempts`.
   */
  async recordAttempts(
    attempts: readonly AttemptToRecord[],
    maxAttempts: number,
  ): Promise<(RecordedAttempt | null)[]> {
    const errors = attempts.map(({ outcome }) =>
      outcome.delivered ? null : (outcome.error ?? 'failed').slice(0, 2000),
    );
    const rows = await this.dataSource.query<
      { id: string; status: DeliveryStatus; attempts: number }[]
    >(
      `WITH o AS (
         SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::int[], $4::int[], $5::text[],
                              $6::boolean[], $7::boolean[], $8::int[])
           AS o(id, claim_token, status_code, latency_ms, error, delivered, gone, delay_ms)
       ), d AS (
         UPDATE notification_deliveries n
         SET attempts = n.attempts + 1, claimed_by = NULL, claimed_until = NULL,
             last_error = o.error,
             status = CASE WHEN o.delivered THEN 'delivered' WHEN o.gone THEN 'cancelled'
                           WHEN n.attempts + 1 >= $9 THEN 'dead' ELSE 'pending' END,
             next_attempt_at = now() + o.delay_ms * interval '1 millisecond',
             delivered_at = CASE WHEN o.delivered THEN now() END
         FROM o WHERE n.id = o.id AND n.claimed_by = o.claim_token AND n.status = 'pending'
         RETURNING n.id, n.status, n.attempts, n.message_id, n.channel, n.target, o.status_code,
                   o.latency_ms, o.error
       ), logged AS (
         INSERT INTO delivery_attempts (delivery_id, attempt, status_code, latency_ms, error)
         SELECT id, attempts, status_code, latency_ms, error FROM d
       ), dead AS (
         UPDATE outbox_messages m
         SET status = 'dead',
             last_error = left(d.channel || ' delivery ' || d.id || ' to ' || d.target
                               || ' dead after ' || d.attempts || ' attempts: ' || d.error, 2000)
         FROM d WHERE d.status = 'dead' AND m.id = d.message_id AND m.status <> 'dead'
       )
       SELECT id, status, attempts FROM d`,
      [
        attempts.map((a) => a.delivery.id),
        attempts.map((a) => a.claimToken),
        attempts.map((a) => a.outcome.statusCode ?? null),
        attempts.map((a) => Math.round(a.outcome.latencyMs)),
        errors,
        attempts.map((a) => a.outcome.delivered),
        attempts.map((a) => a.outcome.gone === true),
        attempts.map((a) => a.delayMs),
        maxAttempts,
      ],
    );
    const byId = new Map(rows.map((row) => [row.id, row]));
    for (const [i, attempt] of attempts.entries()) {
      if (byId.get(attempt.delivery.id)?.status !== 'cancelled') continue;
      await inTransaction(this.dataSource, (manager) =>
        this.retireTarget(manager, attempt.delivery, errors[i] ?? 'gone'),
      );
    }
    return attempts.map((attempt) => {
      const row = byId.get(attempt.delivery.id);
      return row ? { status: row.status, attempts: row.attempts } : null;
    });
  }

  /** The target said it is gone: never send to it again (a webhook endpoint is disabled). */
  private async retireTarget(
    manager: EntityManager,
    delivery: DueDelivery,
    reason: string,
  ): Promise<void> {
    if (delivery.endpointId) {
      await this.endpoints.disable(manager, delivery.endpointId, reason);
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
         AND (d.endpoint_id IS NULL OR ${this.endpoints.isActiveSql('d.endpoint_id')})`,
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
