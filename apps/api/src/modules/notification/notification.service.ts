import { randomUUID } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import type { OutboxMessage } from './outbox-message';

/**
 * The notification module's facade. Modules call `enqueue` inside their own transaction, so a
 * message exists exactly when the change it announces committed; nothing is sent from inside.
 */
@Injectable()
export class NotificationService {
  async enqueue(manager: EntityManager, message: OutboxMessage): Promise<void> {
    await manager.query(
      `INSERT INTO outbox_messages (id, topic, customer_id, aggregate_id, payload)
       VALUES ($1, $2, $3, $4, $5)`,
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
