import {
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnModuleDestroy,
} from '@nestjs/common';
import { type TickOutcome, WorkLoop } from '../common/work-loop';
import { GatewayDatabase } from '../database/gateway-database';
import { WebhookOutbox } from '../webhooks/webhook-outbox';
import { INTENT_COLUMNS, type PaymentIntentRow, toPaymentIntent } from './payment-intent';

/** The longest sleep: authorizations only another instance knows of are found within this. */
const IDLE_CHECK_MS = 30_000;
const BATCH_SIZE = 50;
const qualified = (table: string): string =>
  INTENT_COLUMNS.split(', ')
    .map((column) => `${table}.${column}`)
    .join(', ');

/** An authorization completed now (none: one row of NULLs), and when the next one is due. */
type CompletedRow = { [K in keyof PaymentIntentRow]: PaymentIntentRow[K] | null } & {
  next_due_in_ms: number | null;
};

/**
 * Completes what is due, and in the same statement reads when the earliest other pending
 * authorization is due. The CTEs share one snapshot, so the rows completed here are left out of
 * that by id.
 */
const COMPLETE_SQL = `
WITH due AS (
  SELECT id FROM gateway_sim.payment_intents
   WHERE status = 'processing' AND async_ready_at <= now()
   ORDER BY async_ready_at
   LIMIT ${BATCH_SIZE}
   FOR UPDATE SKIP LOCKED
), done AS (
  UPDATE gateway_sim.payment_intents p
     SET status = 'requires_capture', amount_capturable = p.amount, async_ready_at = NULL
    FROM due
   WHERE p.id = due.id
  RETURNING p.seq, ${qualified('p')}
), next AS (
  SELECT extract(epoch FROM min(async_ready_at) - clock_timestamp()) * 1000 AS next_due_in_ms
    FROM gateway_sim.payment_intents
   WHERE status = 'processing' AND id NOT IN (SELECT id FROM due)
)
SELECT ${qualified('done')}, next.next_due_in_ms::float8
  FROM next LEFT JOIN done ON true
 ORDER BY done.seq`;

/**
 * Finishes `pm_card_async` authorizations whose time has come. Driven by `async_ready_at` in the
 * database, not by in-memory timers, so a pending authorization completes after a restart too;
 * SKIP LOCKED lets several instances share the work. Woken by work, not by polling: `wakeIn` when
 * this process creates one, else at the next due time.
 */
@Injectable()
export class AsyncAuthorizationWorker implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly loop = new WorkLoop({
    tick: () => this.completeDue(),
    idleMs: IDLE_CHECK_MS,
    logger: new Logger(AsyncAuthorizationWorker.name),
  });

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

  /** An authorization was committed by this process, due in `delayMs`. */
  wakeIn(delayMs: number): void {
    this.loop.wake(delayMs);
  }

  private completeDue(): Promise<TickOutcome> {
    return this.db.transaction(async (client) => {
      const { rows } = await client.query<CompletedRow>(COMPLETE_SQL);
      const dueInMs = rows[0].next_due_in_ms;
      const nextDueAt = dueInMs === null ? null : Date.now() + Math.ceil(dueInMs);
      const done = rows.filter((row): row is CompletedRow & PaymentIntentRow => row.id !== null);
      for (const row of done) {
        await this.outbox.enqueue(client, 'payment_intent.succeeded', toPaymentIntent(row));
      }
      return { handled: done.length, nextDueAt };
    });
  }
}
