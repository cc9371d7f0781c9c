import {
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnModuleDestroy,
} from '@nestjs/common';
import { GatewayEnvironment } from '../config/gateway-environment';
import { type TickOutcome, WorkLoop } from '../common/work-loop';
import { GatewayDatabase } from '../database/gateway-database';
import { postWebhook } from './post-webhook';
import { SIGNATURE_HEADER, signPayload } from './webhook-signature';

/** The longest sleep: deliveries only another instance knows of are found within this. */
const IDLE_CHECK_MS = 30_000;
const BATCH_SIZE = 50;
const SEND_TIMEOUT_MS = 5000;

interface Delivery {
  id: string;
  url: string;
  payload: string;
  attempts: number;
}

/** The claimed deliveries (none: one row of NULLs) and when the next pending one is due. */
type ClaimRow = { [K in keyof Delivery]: Delivery[K] | null } & { next_due_in_ms: number | null };

/**
 * Claims what is due with a lease, and in the same statement reads when the earliest other pending
 * delivery for this URL is due (a leased one: when its lease runs out). The CTEs share one
 * snapshot, so the rows claimed here are left out of that by id.
 */
const CLAIM_SQL = `
WITH due AS (
  SELECT id FROM gateway_sim.webhook_deliveries
   WHERE delivered_at IS NULL AND failed_at IS NULL AND next_attempt_at <= now()
     AND url = $1 AND (locked_until IS NULL OR locked_until < now())
   ORDER BY next_attempt_at, id
   LIMIT ${BATCH_SIZE}
   FOR UPDATE SKIP LOCKED
), claimed AS (
  UPDATE gateway_sim.webhook_deliveries d
     SET locked_until = now() + interval '30 seconds'
    FROM due
   WHERE d.id = due.id
  RETURNING d.id, d.url, d.payload, d.attempts, d.next_attempt_at
), next AS (
  SELECT extract(epoch FROM min(greatest(next_attempt_at, locked_until)) - clock_timestamp())
           * 1000 AS next_due_in_ms
    FROM gateway_sim.webhook_deliveries
   WHERE delivered_at IS NULL AND failed_at IS NULL AND url = $1
     AND id NOT IN (SELECT id FROM due)
)
SELECT claimed.id, claimed.url, claimed.payload, claimed.attempts, next.next_due_in_ms::float8
  FROM next LEFT JOIN claimed ON true
 ORDER BY claimed.next_attempt_at, claimed.id`;

/**
 * Sends due deliveries from the outbox table. A claim is a short lease (`locked_until`), so several
 * simulator instances never send one delivery at once, and a crash mid-send only delays it.
 * Non-2xx or no answer → retried after base × 2^n (with jitter) until the attempts run out.
 * Woken by work, not by polling: `wakeIn` when this process enqueues, else at the next due time.
 */
@Injectable()
export class WebhookDispatcher implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(WebhookDispatcher.name);
  private readonly loop = new WorkLoop({
    tick: () => this.dispatchDue(),
    idleMs: IDLE_CHECK_MS,
    logger: this.logger,
  });

  constructor(
    private readonly db: GatewayDatabase,
    private readonly config: GatewayEnvironment,
  ) {}

  onApplicationBootstrap(): void {
    this.loop.start();
  }

  async onModuleDestroy(): Promise<void> {
    await this.loop.stop();
  }

  /** A delivery was committed (or rescheduled) by this process, due in `delayMs`. */
  wakeIn(delayMs: number): void {
    this.loop.wake(delayMs);
  }

  private async dispatchDue(): Promise<TickOutcome> {
    // Each instance sends only what is addressed to its own URL: it signs with its own secret, and
    // simulators configured for other receivers may share the table.
    const url = this.config.GATEWAY_WEBHOOK_URL;
    if (!url) return { handled: 0, nextDueAt: null };
    const rows = await this.db.query<ClaimRow>(CLAIM_SQL, [url]);
    const dueInMs = rows[0].next_due_in_ms;
    const nextDueAt = dueInMs === null ? null : Date.now() + Math.ceil(dueInMs);
    const due = rows.filter((row): row is ClaimRow & Delivery => row.id !== null);
    await Promise.all(due.map((delivery) => this.send(delivery)));
    return { handled: due.length, nextDueAt };
  }

  private async send(delivery: Delivery): Promise<void> {
    let failure: string | undefined;
    try {
      // Signed at send time: a retry hours later still passes the receiver's tolerance window.
      const status = await postWebhook(
        delivery.url,
        delivery.payload,
        {
          [SIGNATURE_HEADER]: signPayload(
            this.config.GATEWAY_WEBHOOK_SECRET as string,
            delivery.payload,
          ),
        },
        SEND_TIMEOUT_MS,
      );
      if (status < 200 || status >= 300) failure = `HTTP ${status}`;
    } catch (error) {
      failure = error instanceof Error ? error.message : String(error);
    }
    if (failure === undefined) {
      await this.db.query(
        `UPDATE gateway_sim.webhook_deliveries
            SET delivered_at = now(), attempts = attempts + 1, locked_until = NULL
          WHERE id = $1`,
        [delivery.id],
      );
      return;
    }
    const attempts = delivery.attempts + 1;
    if (attempts >= this.config.GATEWAY_WEBHOOK_MAX_ATTEMPTS) {
      this.logger.warn(`webhook ${delivery.id} abandoned after ${attempts} attempts: ${failure}`);
      await this.db.query(
        `UPDATE gateway_sim.webhook_deliveries
            SET failed_at = now(), attempts = $2, last_error = $3, locked_until = NULL
          WHERE id = $1`,
        [delivery.id, attempts, failure],
      );
      return;
    }
    const backoffMs = this.config.GATEWAY_WEBHOOK_RETRY_BASE_MS * 2 ** (attempts - 1);
    // Equal jitter: half fixed, half random, so retries of many events spread out.
    const delayMs = Math.round(backoffMs / 2 + (Math.random() * backoffMs) / 2);
    await this.db.query(
      `UPDATE gateway_sim.webhook_deliveries
          SET attempts = $2, last_error = $3, locked_until = NULL,
              next_attempt_at = now() + $4 * interval '1 millisecond'
        WHERE id = $1`,
      [delivery.id, attempts, failure, delayMs],
    );
    this.wakeIn(delayMs);
  }
}
