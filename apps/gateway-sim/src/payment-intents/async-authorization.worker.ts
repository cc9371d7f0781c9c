import {
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnModuleDestroy,
} from '@nestjs/common';
import { PollingLoop } from '../common/polling-loop';
import { GatewayDatabase } from '../database/gateway-database';
import { WebhookOutbox } from '../webhooks/webhook-outbox';
import { INTENT_COLUMNS, type PaymentIntentRow, toPaymentIntent } from './payment-intent';

const POLL_INTERVAL_MS = 100;
const RETURNED_COLUMNS = INTENT_COLUMNS.split(', ')
  .map((column) => `p.${column}`)
  .join(', ');

/**
 * Finishes `pm_card_async` authorizations whose time has come. Driven by `async_ready_at` in the
 * database, not by in-memory timers, so a pending authorization completes after a restart too;
 * SKIP LOCKED lets several instances share the work.
 */
@Injectable()
export class AsyncAuthorizationWorker implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly loop = new PollingLoop(
    POLL_INTERVAL_MS,
    () => this.completeDue(),
    new Logger(AsyncAuthorizationWorker.name),
  );

  constructor(
    private readonly db: GatewayDatabase,
    private readonly outbox: WebhookOutbox,
  ) {}

  onApplicationBootstrap(): void {
    this.loop.start();
  }

  async onModuleDestroy(): Promise<void> {
    await this.loop.stop();
  }

  private async completeDue(): Promise<void> {
    await this.db.transaction(async (client) => {
      const { rows } = await client.query<PaymentIntentRow>(
        `UPDATE gateway_sim.payment_intents p
            SET status = 'requires_capture', amount_capturable = p.amount, async_ready_at = NULL
           FROM (SELECT id FROM gateway_sim.payment_intents
                  WHERE status = 'processing' AND async_ready_at <= now()
                  ORDER BY async_ready_at LIMIT 50
                  FOR UPDATE SKIP LOCKED) due
          WHERE p.id = due.id
      RETURNING ${RETURNED_COLUMNS}`,
      );
      for (const row of rows) {
        await this.outbox.enqueue(client, 'payment_intent.succeeded', toPaymentIntent(row));
      }
    });
  }
}
