import { Injectable } from '@nestjs/common';
import { DataSource, type EntityManager } from 'typeorm';
import type { Page } from '../../common/pagination/page';
import { inTransaction } from '../../database/in-transaction';
import type { ClaimedMessage, OutboxChannel } from './outbox-channel';
import { DELIVERY_CHANNEL, DeliveryRepository } from './delivery.repository';
import { OutboxMessageDto } from './dto/outbox-message.dto';

/** The LISTEN/NOTIFY channel the outbox dispatcher is woken on when messages commit. */
export const OUTBOX_CHANNEL = 'outbox';

export type OutboxStatus = 'pending' | 'sent' | 'dead';

interface OutboxRow {
  id: string;
  topic: string;
  customer_id: string | null;
  aggregate_id: string | null;
  payload: Record<string, unknown>;
  status: OutboxStatus;
  attempts: number;
  available_at: Date;
  last_error: string | null;
  dispatched_at: Date | null;
  dispatched_by: string | null;
  created_at: Date;
}

const COLUMNS = `id, topic, customer_id, aggregate_id, payload, status, attempts, available_at,
  last_error, dispatched_at, dispatched_by, created_at`;

function toClaimed(row: OutboxRow): ClaimedMessage {
  return {
    id: row.id,
    topic: row.topic,
    customerId: row.customer_id,
    aggregateId: row.aggregate_id,
    payload: row.payload,
    attempts: row.attempts,
    createdAt: row.created_at,
  };
}

function toDto(row: OutboxRow): OutboxMessageDto {
  return {
    id: row.id,
    topic: row.topic,
    customerId: row.customer_id,
    aggregateId: row.aggregate_id,
    status: row.status,
    attempts: row.attempts,
    availableAt: row.available_at.toISOString(),
    lastError: row.last_error,
    dispatchedAt: row.dispatched_at?.toISOString() ?? null,
    dispatchedBy: row.dispatched_by,
    createdAt: row.created_at.toISOString(),
    payload: row.payload,
  };
}

/** The outbox_messages table: claims and their outcomes for the dispatcher, views for operators. */
@Injectable()
export class OutboxRepository {
  constructor(
    private readonly dataSource: DataSource,
    private readonly deliveries: DeliveryRepository,
  ) {}

  /**
   * Claims up to `limit` due messages for `claimToken` until the lease ends, in one short statement:
   * SKIP LOCKED lets concurrent dispatchers take disjoint batches without waiting on each other, and a
   * message whose claimer crashed is due again once its lease has run out.
   */
  async claim(claimToken: string, limit: number, leaseMs: number): Promise<ClaimedMessage[]> {
    const [rows] = await this.dataSource.query<[OutboxRow[], number]>(
      `UPDATE outbox_messages o
       SET claimed_by = $1, claimed_until = now() + $2 * interval '1 millisecond'
       FROM (
         SELECT id FROM outbox_messages
         WHERE status = 'pending' AND available_at <= now()
           AND (claimed_until IS NULL OR claimed_until <= now())
         ORDER BY available_at, created_at
         LIMIT $3
         FOR UPDATE SKIP LOCKED
       ) due
       WHERE o.id = due.id
       RETURNING o.${COLUMNS.replace(/,\s*/g, ', o.')}`,
      [claimToken, leaseMs, limit],
    );
    // Oldest first, so one customer's notifications are written in the order things happened.
    return rows.map(toClaimed).sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime());
  }

  /**
   * In the fan-out transaction: locks the message if `claimToken` still holds it. False means the
   * lease ran out and another dispatcher took it over (or an operator changed it): leave it to them.
   */
  async lockClaimed(manager: EntityManager, id: string, claimToken: string): Promise<boolean> {
    const rows = await manager.query<unknown[]>(
      `SELECT 1 FROM outbox_messages WHERE id = $1 AND claimed_by = $2 AND status = 'pending'
       FOR UPDATE`,
      [id, claimToken],
    );
    return rows.length > 0;
  }

  async markSent(manager: EntityManager, id: string, instance: string): Promise<void> {
    await manager.query(
      `UPDATE outbox_messages
       SET status = 'sent', dispatched_at = now(), dispatched_by = $2, claimed_by = NULL,
           claimed_until = NULL, last_error = NULL
       WHERE id = $1`,
      [id, instance],
    );
  }

  /**
   * The batch's fan-out in ONE statement: the messages still claimed by `claimToken` marked sent,
   * and every channel's rows for them (each channel's CTE reads them from `sent`), all of it or
   * nothing. Answers how many were sent (the others' claims were lost to another dispatcher) and
   * how many delivery rows the channels with a worker of their own wrote.
   */
  async dispatchBatch(
    batch: readonly ClaimedMessage[],
    claimToken: string,
    instance: string,
    channels: readonly OutboxChannel[],
  ): Promise<{ sent: number; deliveries: number }> {
    const params: unknown[] = [];
    const param = (value: unknown): string => `$${params.push(value)}`;
    const sent = `UPDATE outbox_messages
        SET status = 'sent', dispatched_at = now(), dispatched_by = ${param(instance)},
            claimed_by = NULL, claimed_until = NULL, last_error = NULL
      WHERE id = ANY (${param(batch.map((m) => m.id))}::uuid[])
        AND claimed_by = ${param(claimToken)} AND status = 'pending'
      RETURNING id, topic, customer_id, created_at`;
    const fanOuts = channels.flatMap((channel) => {
      const sql = channel.fanOutStatement(batch, param);
      return sql === null ? [] : [{ sql, delivers: channel.send !== undefined }];
    });
    const ctes = [`sent AS (${sent})`, ...fanOuts.map((f, i) => `fan_out_${i} AS (${f.sql})`)];
    const deliveries = fanOuts
      .map((f, i) => (f.delivers ? `(SELECT count(*) FROM fan_out_${i})` : null))
      .filter((sql) => sql !== null);
    const [row] = await this.dataSource.query<{ sent: number; deliveries: number }[]>(
      `WITH ${ctes.join(',\n')}
       SELECT (SELECT count(*) FROM sent)::int AS sent,
              (${['0', ...deliveries].join(' + ')})::int AS deliveries`,
      params,
    );
    return row;
  }

  /**
   * A failed fan-out (its transaction rolled back): one more attempt, due again after `delayMs`, or
   * dead once it has had `maxAttempts`. Answers the new status (null if the claim was lost meanwhile).
   */
  async recordFailure(
    id: string,
    claimToken: string,
    error: string,
    delayMs: number,
    maxAttempts: number,
  ): Promise<OutboxStatus | null> {
    const [rows] = await this.dataSource.query<[{ status: OutboxStatus }[], number]>(
      `UPDATE outbox_messages
       SET attempts = attempts + 1, last_error = $3, claimed_by = NULL, claimed_until = NULL,
           status = CASE WHEN attempts + 1 >= $5 THEN 'dead' ELSE 'pending' END,
           available_at = now() + $4 * interval '1 millisecond'
       WHERE id = $1 AND claimed_by = $2
       RETURNING status`,
      [id, claimToken, error.slice(0, 2000), delayMs, maxAttempts],
    );
    return rows[0]?.status ?? null;
  }

  /** Clears leases that ran out (their claimer died); answers how many. */
  async releaseExpiredClaims(): Promise<number> {
    const [, count] = await this.dataSource.query<[unknown[], number]>(
      `UPDATE outbox_messages SET claimed_by = NULL, claimed_until = NULL
       WHERE status = 'pending' AND claimed_until < now()`,
    );
    return count;
  }

  /** Deletes messages dispatched more than `hours` ago; dead ones stay for an operator. */
  async purgeSent(hours: number): Promise<number> {
    const [, count] = await this.dataSource.query<[unknown[], number]>(
      `DELETE FROM outbox_messages
       WHERE id IN (
         SELECT id FROM outbox_messages
         WHERE status = 'sent' AND dispatched_at < now() - $1 * interval '1 hour'
         LIMIT 10000
       )`,
      [hours],
    );
    return count;
  }

  /** For the metrics scrape: messages by status, every status (0 too). */
  async countByStatus(): Promise<{ status: OutboxStatus; count: number }[]> {
    return this.dataSource.query<{ status: OutboxStatus; count: number }[]>(
      `SELECT s.status, count(o.id)::int AS count
       FROM unnest(ARRAY['pending', 'sent', 'dead']) AS s(status)
       LEFT JOIN outbox_messages o ON o.status = s.status
       GROUP BY s.status`,
    );
  }

  async list(
    status: OutboxStatus | undefined,
    limit: number,
    offset: number,
  ): Promise<Page<OutboxMessageDto>> {
    const where = status ? `WHERE status = $1` : `WHERE $1::text IS NULL`;
    const [rows, [{ total }]] = await Promise.all([
      this.dataSource.query<OutboxRow[]>(
        `SELECT ${COLUMNS} FROM outbox_messages ${where}
         ORDER BY created_at DESC, id LIMIT $2 OFFSET $3`,
        [status ?? null, limit, offset],
      ),
      this.dataSource.query<{ total: number }[]>(
        `SELECT count(*)::int AS total FROM outbox_messages ${where}`,
        [status ?? null],
      ),
    ]);
    return { items: rows.map(toDto), total };
  }

  async find(id: string): Promise<OutboxMessageDto | null> {
    const rows = await this.dataSource.query<OutboxRow[]>(
      `SELECT ${COLUMNS} FROM outbox_messages WHERE id = $1`,
      [id],
    );
    return rows.length > 0 ? toDto(rows[0]) : null;
  }

  /**
   * A second chance for a dead message, in one transaction; every instance's dispatcher and
   * delivery worker is woken after it committed. A message whose fan-out died goes back to pending with a fresh set of
   * attempts. A message that was fanned out (dispatched_at is set) but whose delivery died goes back
   * to sent, and its dead deliveries to pending with attempts 0: fanning it out again would only
   * write in-app rows twice. null when the message is not dead (or does not exist).
   */
  async revive(id: string): Promise<OutboxMessageDto | null> {
    const revived = await inTransaction(this.dataSource, async (manager) => {
      const [rows] = await manager.query<[OutboxRow[], number]>(
        `UPDATE outbox_messages
         SET status = CASE WHEN dispatched_at IS NULL THEN 'pending' ELSE 'sent' END,
             attempts = 0, available_at = now(), claimed_by = NULL, claimed_until = NULL,
             last_error = CASE WHEN dispatched_at IS NULL THEN last_error END
         WHERE id = $1 AND status = 'dead'
         RETURNING ${COLUMNS}`,
        [id],
      );
      if (rows.length === 0) return null;
      await this.deliveries.revive(manager, id);
      return toDto(rows[0]);
    });
    // After the commit, not inside it: a NOTIFY in a transaction serializes every commit.
    if (revived) {
      await this.dataSource.query(
        `SELECT pg_notify('${OUTBOX_CHANNEL}', ''), pg_notify('${DELIVERY_CHANNEL}', '')`,
      );
    }
    return revived;
  }
}
