import { randomUUID } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import { OUTBOX_CHANNEL } from './outbox-listener';
import type { OutboxMessage } from './outbox-message';

/**
 * The notification module's facade. Modules call `enqueue` inside their own transaction, so a
 * message exists exactly when the change it announces committed; nothing is sent from inside.
 */
@Injectable()
export class NotificationService {
  async enqueue(manager: EntityManager, message: OutboxMessage): Promise<void> {
    // pg_notify in the same statement (one round trip): PostgreSQL delivers it only on commit, so
    // dispatchers wake exactly when the message becomes visible, and never for a rolled-back one.
    await manager.query(
      `WITH inserted AS (
         INSERT INTO outbox_messages (id, topic, customer_id, aggregate_id, payload)
         VALUES ($1, $2, $3, $4, $5) RETURNING id
       )
       SELECT pg_notify('${OUTBOX_CHANNEL}', '') FROM inserted`,
      [
        randomUUID(),
        message.topic,
        message.customerId,
        message.aggregateId,
        JSON.stringify(message.payload),
      ],
    );
  }
}
