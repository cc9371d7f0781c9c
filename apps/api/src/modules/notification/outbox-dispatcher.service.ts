import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import {
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnModuleDestroy,
} from '@nestjs/common';
import { DataSource } from 'typeorm';
import { LockProvider } from '@app/lock';
import { IntervalJob } from '../../common/jobs/interval-job';
import { WakeTimer } from '../../common/jobs/wake-timer';
import { AppConfigService } from '../../config/app-config.service';
import { inTransaction } from '../../database/in-transaction';
import { PgListener } from '../../database/pg-listener';
import { DeliveryWorkerService } from './delivery-worker.service';
import { NotificationMetrics } from './notification.metrics';
import { type ClaimedMessage, type OutboxChannel, OUTBOX_CHANNELS } from './outbox-channel';
import { OUTBOX_CHANNEL, OutboxRepository } from './outbox.repository';
import { retryDelayMs } from './retry-backoff';

const MAINTENANCE_JOB_KEY = 'job:outbox-maintenance';
const MAINTENANCE_INTERVAL_MS = 60_000;
/**
 * Sends what the outbox holds, on every instance at once: PostgreSQL decides who sends what (claims
 * with FOR UPDATE SKIP LOCKED and a lease), so no lock is needed on the hot path. It wakes when a
 * statement of this instance that wrote outbox rows returned (NotificationService.committed), on a
 * NOTIFY sent after commit by other writers, and when a retry it scheduled falls due; with nothing
 * else it sleeps NOTIFY_POLL_MS at most (what a crashed instance left). A batch is fanned out to
 * every channel in one statement that also marks it
 * sent; a failed fan-out is retried with exponential backoff and jitter, then dead-lettered after
 * NOTIFY_MAX_ATTEMPTS.
 * Only the periodic clean-up runs on one instance at a time (the lock provider's job lease).
 */
@Injectable()
export class OutboxDispatcherService implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(OutboxDispatcherService.name);
  /** Who dispatched a message (outbox_messages.dispatched_by), for operators. */
  readonly instance = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  private readonly listener: PgListener;
  private draining: Promise<void> | null = null;
  private again = false;
  private stopping = false;
  private readonly maintenance: IntervalJob<{ released: number; purged: number }>;
  private readonly timer = new WakeTimer(() => this.wake());

  constructor(
    private readonly dataSource: DataSource,
    private readonly outbox: OutboxRepository,
    @Inject(OUTBOX_CHANNELS) private readonly channels: OutboxChannel[],
    private readonly metrics: NotificationMetrics,
    lock: LockProvider,
    private readonly config: AppConfigService,
    private readonly deliveryWorker: DeliveryWorkerService,
  ) {
    this.listener = new PgListener(config.get('DATABASE_URL'), OUTBOX_CHANNEL, () => this.wake());
    this.maintenance = new IntervalJob(lock, this.logger, {
      name: 'Outbox maintenance',
      intervalMs: MAINTENANCE_INTERVAL_MS,
      lease: { key: MAINTENANCE_JOB_KEY, ttlMs: 30_000 },
      run: () => this.maintainLeased(),
    });
  }

  onApplicationBootstrap(): void {
    // The listener wakes us once connected, which also sends what piled up while no instance ran.
    this.listener.start();
    this.maintenance.start();
  }

  async onModuleDestroy(): Promise<void> {
    this.stopping = true;
    this.timer.cancel();
    this.maintenance.stop();
    await this.listener.stop();
    // Let the batch in hand finish before the DataSource closes; its claims would otherwise wait
    // out their lease.
    await this.draining;
  }

  /** Asks for a dispatch round; calls during a round make it go round once more. */
  wake(): void {
    if (this.stopping) return;
    if (this.draining) {
      this.again = true;
      return;
    }
    this.draining = this.drain().finally(() => (this.draining = null));
  }

  /** Resolves when the round in progress (if any) is over; for tests and shutdown. */
  async idle(): Promise<void> {
    while (this.draining) await this.draining;
  }

  /**
   * Claims and fans out batches until one comes back short. A full batch means more are due: then
   * another loop claims the next batch while this one fans out, up to NOTIFY_DISPATCH_CONCURRENCY
   * loops, so a backlog drains on several connections while a lone message costs one claim.
   */
  private async drain(): Promise<void> {
    const batchSize = this.config.get('NOTIFY_BATCH_SIZE');
    const leaseMs = this.config.get('NOTIFY_LEASE_MS');
    const concurrency = this.config.get('NOTIFY_DISPATCH_CONCURRENCY');
    const loops = new Set<Promise<void>>();
    const loop = async (): Promise<void> => {
      try {
        for (;;) {
          const claimToken = randomUUID();
          const batch = await this.outbox.claim(claimToken, batchSize, leaseMs);
          const full = batch.length === batchSize && !this.stopping;
          if (full && loops.size < concurrency) start();
          // Deliveries written: this instance's worker starts on them at once.
          if (await this.dispatchBatch(batch, claimToken)) this.deliveryWorker.wake();
          if (!full) return;
        }
      } catch (error) {
        // The database is away; the poll tries again, and claims taken meanwhile run out.
        this.logger.error({ err: error }, 'Outbox dispatch round failed; retrying');
      }
    };
    const start = (): void => {
      const running: Promise<void> = loop().finally(() => loops.delete(running));
      loops.add(running);
    };
    do {
      this.again = false;
      start();
      while (loops.size > 0) await Promise.all(loops);
    } while (this.again && !this.stopping);
    // Retries this instance scheduled wake it themselves; the longest sleep is for what another
    // instance left when it died (its claims lapse, its messages were never dispatched).
    if (!this.stopping) this.timer.at(Date.now() + this.config.get('NOTIFY_POLL_MS'));
  }

  /**
   * The whole batch in one statement; if that fails (one message the channels cannot fan out, say),
   * one transaction per message, a few at once, so only the bad one is retried and dead-lettered.
   * Answers whether deliveries may have been written for the delivery worker.
   */
  private async dispatchBatch(batch: ClaimedMessage[], claimToken: string): Promise<boolean> {
    if (batch.length === 0) return false;
    try {
      const { sent, deliveries } = await this.outbox.dispatchBatch(
        batch,
        claimToken,
        this.instance,
        this.channels,
      );
      this.metrics.dispatched.inc(sent);
      return deliveries > 0;
    } catch (error) {
      this.logger.debug({ err: error, messages: batch.length }, 'Batch fan-out failed; one by one');
    }
    let dispatched = 0;
    let next = 0;
    const fanOutWorker = async (): Promise<void> => {
      while (next < batch.length && !this.stopping) {
        const message = batch[next];
        next += 1;
        if (await this.dispatch(message, claimToken)) dispatched++;
      }
    };
    const concurrency = Math.min(this.config.get('NOTIFY_DISPATCH_CONCURRENCY'), batch.length);
    await Promise.all(Array.from({ length: concurrency }, fanOutWorker));
    return dispatched > 0;
  }

  private async dispatch(message: ClaimedMessage, claimToken: string): Promise<boolean> {
    try {
      const sent = await inTransaction(this.dataSource, async (manager) => {
        if (!(await this.outbox.lockClaimed(manager, message.id, claimToken))) return false;
        for (const channel of this.channels) await channel.fanOut(manager, message);
        await this.outbox.markSent(manager, message.id, this.instance);
        return true;
      });
      if (sent) this.metrics.dispatched.inc();
      return sent;
    } catch (error) {
      await this.recordFailure(message, claimToken, error);
      return false;
    }
  }

  private async recordFailure(
    message: ClaimedMessage,
    claimToken: string,
    error: unknown,
  ): Promise<void> {
    const attempt = message.attempts + 1;
    const reason = error instanceof Error ? error.message : String(error);
    const delayMs = retryDelayMs(attempt, this.config.get('NOTIFY_RETRY_BASE_MS'));
    const status = await this.outbox.recordFailure(
      message.id,
      claimToken,
      reason,
      delayMs,
      this.config.get('NOTIFY_MAX_ATTEMPTS'),
    );
    if (status === 'dead') {
      this.metrics.failures.inc({ outcome: 'dead' });
      this.logger.error(
        { messageId: message.id, topic: message.topic, attempts: attempt, err: error },
        'Outbox message dead-lettered after its last attempt; POST /admin/outbox/{id}/retry resends it',
      );
    } else if (status === 'pending') {
      // The retry is due then; nothing else would wake this instance for it.
      this.timer.at(Date.now() + delayMs);
      this.metrics.failures.inc({ outcome: 'retry' });
      this.logger.warn(
        { messageId: message.id, topic: message.topic, attempts: attempt, err: error },
        'Outbox dispatch failed; retrying with backoff',
      );
    }
  }

  /**
   * Clean-up, once per interval across all instances (the maintenance job's lease): frees claims
   * whose claimer died, and deletes messages dispatched longer ago than NOTIFY_RETENTION_HOURS. With
   * Redis unreachable or LOCK_MODE=off it runs anyway; both statements are harmless twice. Null if it
   * did not run (see IntervalJob).
   */
  maintain(): Promise<{ released: number; purged: number } | null> {
    return this.maintenance.runNow();
  }

  private async maintainLeased(): Promise<{ released: number; purged: number }> {
    const released = await this.outbox.releaseExpiredClaims();
    const purged = await this.outbox.purgeSent(this.config.get('NOTIFY_RETENTION_HOURS'));
    if (released > 0) {
      this.logger.warn({ released }, 'Released outbox claims of a dispatcher that stopped');
      this.wake();
    }
    return { released, purged };
  }
}
