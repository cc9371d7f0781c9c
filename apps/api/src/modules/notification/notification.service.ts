import { randomUUID } from 'node:crypto';
import { Injectable, type OnModuleInit } from '@nestjs/common';
import { DataSource, type EntityManager, type EntitySubscriberInterface } from 'typeorm';
import type { OutboxMessage } from './outbox-message';
import { OutboxDispatcherService } from './outbox-dispatcher.service';

/** Set on a transaction's QueryRunner when it wrote outbox rows: wake the dispatcher on commit. */
const OUTBOX_WRITTEN = 'seatlockOutboxWritten';

/**
 * The notification module's facade. Modules call `enqueue` inside their own transaction, so a
 * message exists exactly when the change it announces committed; nothing is sent from inside.
 * No NOTIFY goes into that transaction (it would serialize every commit in the cluster): this
 * instance's dispatcher is woken once the transaction committed, and the poll covers the rest.
 */
@Injectable()
export class NotificationService implements OnModuleInit {
  constructor(
    private readonly dataSource: DataSource,
    private readonly dispatcher: OutboxDispatcherService,
  ) {}

  onModuleInit(): void {
    const wakeOnCommit: EntitySubscriberInterface = {
      afterTransactionCommit: ({ queryRunner }) => {
        if (!queryRunner.data?.[OUTBOX_WRITTEN]) return;
        queryRunner.data[OUTBOX_WRITTEN] = false;
        this.dispatcher.wake();
      },
      afterTransactionRollback: ({ queryRunner }) => {
        if (queryRunner.data) queryRunner.data[OUTBOX_WRITTEN] = false;
      },
    };
    this.dataSource.subscribers.push(wakeOnCommit);
  }

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
    const runner = manager.queryRunner;
    if (runner?.isTransactionActive) runner.data = { ...runner.data, [OUTBOX_WRITTEN]: true };
    else this.dispatcher.wake();
  }

  /** After a statement that wrote outbox rows and committed on its own (the one-statement hold). */
  committed(): void {
    this.dispatcher.wake();
  }
}
