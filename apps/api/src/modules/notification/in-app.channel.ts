import { randomUUID } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import { NotificationMetrics } from './notification.metrics';
import { NotificationTemplates } from './notification-templates';
import type { ClaimedMessage, OutboxChannel } from './outbox-channel';

/**
 * The in-app channel: writing the notification row is the delivery, so it needs no worker of its
 * own. One row per message (message_id is unique); a repeated fan-out changes nothing and is counted.
 */
@Injectable()
export class InAppChannel implements OutboxChannel {
  readonly name = 'in_app';

  constructor(private readonly metrics: NotificationMetrics) {}

  async fanOut(manager: EntityManager, message: ClaimedMessage): Promise<void> {
    if (!message.customerId) return;
    const rendered = NotificationTemplates.render(message.topic, message.payload);
    if (!rendered) return;
    // customer_id references customers: a message for a customer who does not exist fails here,
    // and so is retried and dead-lettered instead of silently dropped.
    const [, inserted] = await manager.query<[unknown[], number]>(
      `INSERT INTO notifications (id, message_id, customer_id, booking_id, type, title, body, created_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
       ON CONFLICT (message_id) DO NOTHING`,
      [
        randomUUID(),
        message.id,
        message.customerId,
        rendered.bookingId,
        message.topic,
        rendered.title,
        rendered.body,
        message.createdAt,
      ],
    );
    if (inserted === 0) this.metrics.duplicates.inc({ channel: this.name });
  }

  fanOutStatement(
    messages: readonly ClaimedMessage[],
    param: (value: unknown) => string,
  ): string | null {
    const rows = messages.flatMap((message) => {
      const rendered = message.customerId
        ? NotificationTemplates.render(message.topic, message.payload)
        : null;
      return rendered ? [{ id: message.id, ...rendered }] : [];
    });
    if (rows.length === 0) return null;
    return `INSERT INTO notifications (id, message_id, customer_id, booking_id, type, title, body, created_at)
      SELECT gen_random_uuid(), s.id, s.customer_id, r.booking_id, s.topic, r.title, r.body, s.created_at
      FROM unnest(${param(rows.map((r) => r.id))}::uuid[], ${param(rows.map((r) => r.bookingId))}::uuid[],
                  ${param(rows.map((r) => r.title))}::text[], ${param(rows.map((r) => r.body))}::text[])
           AS r(message_id, booking_id, title, body)
      JOIN sent s ON s.id = r.message_id
      ON CONFLICT (message_id) DO NOTHING RETURNING 1`;
  }
}
