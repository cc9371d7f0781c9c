import { Injectable } from '@nestjs/common';
import { Counter, Gauge, Registry } from 'prom-client';
import { DeliveryRepository } from './delivery.repository';
import { OutboxRepository } from './outbox.repository';

/** Outbox health: how many messages wait, went out, or died; and what the dispatcher did. */
@Injectable()
export class NotificationMetrics {
  readonly dispatched: Counter;
  readonly failures: Counter<'outcome'>;
  readonly duplicates: Counter<'channel'>;
  readonly outbox: Gauge<'status'>;
  readonly deliveryAttempts: Counter<'channel' | 'outcome'>;
  readonly deliveries: Gauge<'channel' | 'status'>;

  constructor(registry: Registry, outbox: OutboxRepository, deliveries: DeliveryRepository) {
    this.dispatched = new Counter({
      name: 'seatlock_outbox_dispatched_total',
      help: 'Outbox messages this instance fanned out to every channel',
      registers: [registry],
    });
    this.failures = new Counter({
      name: 'seatlock_outbox_failures_total',
      help: 'Failed dispatch attempts by outcome: retry (backing off) or dead (dead letter)',
      labelNames: ['outcome'],
      registers: [registry],
    });
    this.duplicates = new Counter({
      name: 'seatlock_outbox_duplicates_total',
      help: 'Fan-outs a channel had already written (a message dispatched twice); should stay 0',
      labelNames: ['channel'],
      registers: [registry],
    });
    this.outbox = new Gauge({
      name: 'seatlock_outbox_messages',
      help: 'Outbox messages by status (pending, sent, dead), counted at scrape time',
      labelNames: ['status'],
      registers: [registry],
      async collect() {
        const rows = await outbox.countByStatus();
        for (const row of rows) this.set({ status: row.status }, row.count);
      },
    });
    this.deliveryAttempts = new Counter({
      name: 'seatlock_delivery_attempts_total',
      help: 'Delivery attempts (webhook, email) this instance made, by channel and resulting status: delivered, pending (will retry), dead, cancelled (target gone)',
      labelNames: ['channel', 'outcome'],
      registers: [registry],
    });
    this.deliveries = new Gauge({
      name: 'seatlock_notification_deliveries',
      help: 'Notification deliveries by channel and status (pending, delivered, dead, cancelled), counted at scrape time',
      labelNames: ['channel', 'status'],
      registers: [registry],
      async collect() {
        const rows = await deliveries.countByChannelAndStatus();
        this.reset();
        for (const row of rows) this.set({ channel: row.channel, status: row.status }, row.count);
      },
    });
  }
}
