import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { Counter, Gauge, Registry } from 'prom-client';

/** Outbox health: how many messages wait, went out, or died; and what the dispatcher did. */
@Injectable()
export class NotificationMetrics {
  readonly dispatched: Counter;
  readonly failures: Counter<'outcome'>;
  readonly duplicates: Counter<'channel'>;
  readonly outbox: Gauge<'status'>;
  readonly deliveryAttempts: Counter<'channel' | 'outcome'>;
  readonly deliveries: Gauge<'channel' | 'status'>;

  constructor(registry: Registry, dataSource: DataSource) {
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
        const rows = await dataSource.query<{ status: string; count: number }[]>(
          `SELECT s.status, count(o.id)::int AS count
           FROM unnest(ARRAY['pending', 'sent', 'dead']) AS s(status)
           LEFT JOIN outbox_messages o ON o.status = s.status
           GROUP BY s.status`,
        );
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
        // Every status appears (as 0 too) for each channel that has deliveries, so alerts on
        // dead > 0 see a series from the first delivery on.
        const rows = await dataSource.query<{ channel: string; status: string; count: number }[]>(
          `SELECT c.channel, s.status, count(d.id)::int AS count
           FROM (SELECT DISTINCT channel FROM notification_deliveries) c
           CROSS JOIN unnest(ARRAY['pending', 'delivered', 'dead', 'cancelled']) AS s(status)
           LEFT JOIN notification_deliveries d ON d.channel = c.channel AND d.status = s.status
           GROUP BY c.channel, s.status`,
        );
        this.reset();
        for (const row of rows) this.set({ channel: row.channel, status: row.status }, row.count);
      },
    });
  }
}
