import { Injectable } from '@nestjs/common';
import type { PoolClient } from 'pg';
import { GatewayEnvironment } from '../config/gateway-environment';
import { newId, unixSeconds } from '../common/new-id';
import { GatewayDatabase } from '../database/gateway-database';
import { WebhookDispatcher } from './webhook-dispatcher';

export type WebhookEventType =
  | 'payment_intent.succeeded'
  | 'payment_intent.payment_failed'
  | 'payment_intent.canceled'
  | 'charge.captured'
  | 'charge.refunded';

/**
 * Records an event for delivery in the caller's transaction, so an event exists exactly when its
 * state change committed. Faults are decided here: a second copy (same event id) and a random
 * delay per copy, which makes deliveries overtake each other. Once committed, the dispatcher is
 * woken for the copy due first.
 */
@Injectable()
export class WebhookOutbox {
  constructor(
    private readonly config: GatewayEnvironment,
    private readonly db: GatewayDatabase,
    private readonly dispatcher: WebhookDispatcher,
  ) {}

  async enqueue(client: PoolClient, type: WebhookEventType, object: unknown): Promise<void> {
    const url = this.config.GATEWAY_WEBHOOK_URL;
    if (!url) return;
    const event = {
      id: newId('evt'),
      object: 'event',
      type,
      created: unixSeconds(),
      data: { object },
    };
    const payload = JSON.stringify(event);
    const copies = Math.random() < this.config.GATEWAY_WEBHOOK_DUPLICATE_RATE ? 2 : 1;
    let firstDueInMs = Infinity;
    for (let copy = 0; copy < copies; copy += 1) {
      const delayMs = Math.floor(Math.random() * this.config.GATEWAY_WEBHOOK_MAX_DELAY_MS);
      firstDueInMs = Math.min(firstDueInMs, delayMs);
      await client.query(
        `INSERT INTO gateway_sim.webhook_deliveries (event_id, event_type, url, payload, next_attempt_at)
         VALUES ($1, $2, $3, $4, clock_timestamp() + $5 * interval '1 millisecond')`,
        [event.id, type, url, payload, delayMs],
      );
    }
    this.db.afterCommit(client, () => this.dispatcher.wakeIn(firstDueInMs));
  }
}
