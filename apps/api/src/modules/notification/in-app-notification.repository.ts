import { randomUUID } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { DataSource, type EntityManager } from 'typeorm';
import type { Page } from '../../common/pagination/page';
import { NotificationDto } from './dto/notification.dto';

/** A notification to write: one per outbox message that concerns a customer. */
export interface NewInAppNotification {
  messageId: string;
  customerId: string;
  bookingId: string | null;
  /** The outbox topic it reports. */
  type: string;
  title: string;
  body: string;
  /** When the transition committed (the message's created_at), not when it was written. */
  createdAt: Date;
}

interface NotificationRow {
  id: string;
  type: string;
  booking_id: string | null;
  title: string;
  body: string;
  created_at: Date;
  read_at: Date | null;
}

const COLUMNS = 'id, type, booking_id, title, body, created_at, read_at';

function toDto(row: NotificationRow): NotificationDto {
  return {
    id: row.id,
    type: row.type,
    bookingId: row.booking_id,
    title: row.title,
    body: row.body,
    createdAt: row.created_at.toISOString(),
    readAt: row.read_at?.toISOString() ?? null,
  };
}

/**
 * The notifications table: written by the in-app channel's fan-out, read and marked read by its
 * customer. message_id is unique, so a message fanned out twice still has one notification.
 */
@Injectable()
export class InAppNotificationRepository {
  constructor(private readonly dataSource: DataSource) {}

  /**
   * In the fan-out transaction. customer_id references customers: a message for a customer who
   * does not exist fails here, and so is retried and dead-lettered instead of silently dropped.
   * False when the message had its notification already.
   */
  async insert(manager: EntityManager, notification: NewInAppNotification): Promise<boolean> {
    const [, inserted] = await manager.query<[unknown[], number]>(
      `INSERT INTO notifications (id, message_id, customer_id, booking_id, type, title, body, created_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
       ON CONFLICT (message_id) DO NOTHING`,
      [
        randomUUID(),
        notification.messageId,
        notification.customerId,
        notification.bookingId,
        notification.type,
        notification.title,
        notification.body,
        notification.createdAt,
      ],
    );
    return inserted > 0;
  }

  /**
   * The same insert for a batch, as the data-modifying CTE the outbox joins into its one fan-out
   * statement: customer, topic and time come from the messages still claimed (the CTE `sent`).
   */
  insertBatchStatement(
    notifications: readonly Pick<
      NewInAppNotification,
      'messageId' | 'bookingId' | 'title' | 'body'
    >[],
    param: (value: unknown) => string,
  ): string {
    return `INSERT INTO notifications (id, message_id, customer_id, booking_id, type, title, body, created_at)
      SELECT gen_random_uuid(), s.id, s.customer_id, r.booking_id, s.topic, r.title, r.body, s.created_at
      FROM unnest(${param(notifications.map((n) => n.messageId))}::uuid[],
                  ${param(notifications.map((n) => n.bookingId))}::uuid[],
                  ${param(notifications.map((n) => n.title))}::text[],
                  ${param(notifications.map((n) => n.body))}::text[])
           AS r(message_id, booking_id, title, body)
      JOIN sent s ON s.id = r.message_id
      ON CONFLICT (message_id) DO NOTHING RETURNING 1`;
  }

  /** The customer's notifications, newest first; only the unread ones if `unreadOnly`. */
  async list(
    customerId: string,
    unreadOnly: boolean,
    limit: number,
    offset: number,
  ): Promise<Page<NotificationDto>> {
    const where = `customer_id = $1${unreadOnly ? ' AND read_at IS NULL' : ''}`;
    const [rows, [{ total }]] = await Promise.all([
      this.dataSource.query<NotificationRow[]>(
        `SELECT ${COLUMNS} FROM notifications WHERE ${where}
         ORDER BY created_at DESC, id LIMIT $2 OFFSET $3`,
        [customerId, limit, offset],
      ),
      this.dataSource.query<{ total: number }[]>(
        `SELECT count(*)::int AS total FROM notifications WHERE ${where}`,
        [customerId],
      ),
    ]);
    return { items: rows.map(toDto), total };
  }

  /** Sets read_at once (marking it again keeps the first time); null unless it is the customer's. */
  async markRead(customerId: string, id: string): Promise<NotificationDto | null> {
    const [rows] = await this.dataSource.query<[NotificationRow[], number]>(
      `UPDATE notifications SET read_at = coalesce(read_at, now())
       WHERE id = $1 AND customer_id = $2
       RETURNING ${COLUMNS}`,
      [id, customerId],
    );
    return rows.length > 0 ? toDto(rows[0]) : null;
  }
}
