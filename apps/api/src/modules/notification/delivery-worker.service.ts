import { randomUUID } from 'node:crypto';
import {
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnModuleDestroy,
} from '@nestjs/common';
import { Batcher } from '../../common/batching/batcher';
import { WakeTimer } from '../../common/jobs/wake-timer';
import { AppConfigService } from '../../config/app-config.service';
import { PgListener } from '../../database/pg-listener';
import {
  type AttemptToRecord,
  type ClaimedDelivery,
  DeliveryRepository,
  type RecordedAttempt,
} from './delivery.repository';
import { DELIVERY_CHANNEL } from './delivery.repository';
import { NotificationMetrics } from './notification.metrics';
import {
  type DeliveryOutcome,
  type DueDelivery,
  type OutboxChannel,
  OUTBOX_CHANNELS,
} from './outbox-channel';
import { retryDelayMs } from './retry-backoff';

/** Sends in flight per instance: enough to hide a receiver's latency, few enough to be polite. */
export const DELIVERY_CONCURRENCY = 64;

/**
 * Sends the notification_deliveries rows that channels (webhook, email) wrote during fan-out, on
 * every instance at once: PostgreSQL decides who sends what (claims with FOR UPDATE SKIP LOCKED and a
 * lease), so there is no lock on the hot path. Woken on commit of every fan-out that wrote deliveries
 * (NOTIFY, so every instance hears it) and when a retry it recorded falls due (NOTIFY_POLL_MS at
 * most, for what a crashed instance left). It claims only as
 * many rows as it has free send slots, so every claimed row is being sent and a lease only has to
 * outlive one send. Each attempt is recorded, those that finish together in one statement;
 * failures back off with jitter until the dead letter.
 */
@Injectable()
export class DeliveryWorkerService implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(DeliveryWorkerService.name);
  private readonly senders = new Map<string, OutboxChannel>();
  private readonly listener: PgListener;
  private readonly shutdown = new AbortController();
  /** Sends in flight: the slots. */
  private readonly inFlight = new Set<Promise<void>>();
  /** Claimed and waiting for a slot. */
  private readonly ready: { claimed: ClaimedDelivery; claimToken: string }[] = [];
  /** Outcomes being recorded; a slot is free again as soon as its send is over. */
  private readonly recording = new Set<Promise<void>>();
  private readonly attempts: Batcher<AttemptToRecord, RecordedAttempt | null>;
  private pumping: Promise<void> | null = null;
  private readonly timer = new WakeTimer(() => this.wake());
  private again = false;
  /** The last claim filled every free slot: more may be due as soon as a slot frees up. */
  private backlog = false;

  constructor(
    private readonly deliveries: DeliveryRepository,
    @Inject(OUTBOX_CHANNELS) channels: OutboxChannel[],
    private readonly metrics: NotificationMetrics,
    private readonly config: AppConfigService,
  ) {
    for (const channel of channels) if (channel.send) this.senders.set(channel.name, channel);
    this.attempts = new Batcher((items) =>
      this.deliveries.recordAttempts(items, this.config.get('NOTIFY_MAX_ATTEMPTS')),
    );
    this.listener = new PgListener(config.get('DATABASE_URL'), DELIVERY_CHANNEL, () => this.wake());
  }

  onApplicationBootstrap(): void {
    if (this.senders.size === 0) return;
    // The listener wakes us once connected, which also sends what piled up while no instance ran.
    this.listener.start();
  }

  async onModuleDestroy(): Promise<void> {
    // Abort the sends in hand and hand their rows back (see deliver), before the DataSource closes.
    this.shutdown.abort();
    this.timer.cancel();
    await this.listener.stop();
    await this.idle();
    // Claimed but never started: due again at once for whoever runs.
    for (const { claimed, claimToken } of this.ready.splice(0)) {
      await this.deliveries.release(claimed.delivery.id, claimToken).catch(() => undefined);
    }
  }

  /** Asks for a claim round; calls during a round make it go round once more. */
  wake(): void {
    if (this.shutdown.signal.aborted) return;
    if (this.pumping) {
      this.again = true;
      return;
    }
    this.pumping = this.pump().finally(() => {
      this.pumping = null;
      if (this.again) {
        this.again = false;
        this.wake();
      }
    });
  }

  /** Resolves when no claim round and no send is in progress; for tests and shutdown. */
  async idle(): Promise<void> {
    while (this.pumping || this.inFlight.size > 0 || this.recording.size > 0) {
      await Promise.all([this.pumping, ...this.inFlight, ...this.recording]);
    }
  }

  /**
   * How long a claim lasts: longer than a wait for a slot, one send and its record, so no two
   * instances send a row at once.
   */
  private leaseMs(): number {
    return Math.max(
      this.config.get('NOTIFY_LEASE_MS'),
      2 * this.config.get('NOTIFY_SEND_TIMEOUT_MS') + 2000,
    );
  }

  /**
   * Tops up the claimed deliveries to twice the slots, so a slot that frees never waits for a
   * claim; in strides of a quarter of the slots at least, not one row per finished send.
   */
  private async pump(): Promise<void> {
    await this.claimRounds();
    if (this.backlog || this.shutdown.signal.aborted) return;
    // Retries wake it themselves (record); this is for claims another instance left when it died.
    this.timer.at(Date.now() + this.config.get('NOTIFY_POLL_MS'));
  }

  private async claimRounds(): Promise<void> {
    try {
      while (!this.shutdown.signal.aborted) {
        const wanted = 2 * DELIVERY_CONCURRENCY - this.inFlight.size - this.ready.length;
        const busy = this.inFlight.size + this.ready.length > 0;
        // Enough in hand: a finishing send wakes us again (backlog stays true).
        if (wanted <= 0 || (busy && wanted < DELIVERY_CONCURRENCY / 4)) return;
        const claimToken = randomUUID();
        const batch = await this.deliveries.claim(claimToken, wanted, this.leaseMs(), [
          ...this.senders.keys(),
        ]);
        this.backlog = batch.length === wanted;
        for (const claimed of batch) this.ready.push({ claimed, claimToken });
        this.startSends();
        if (!this.backlog) return;
      }
    } catch (error) {
      // The database is away; the next plan polls, and claims taken meanwhile run out.
      this.logger.error({ err: error }, 'Delivery claim round failed; retrying');
    }
  }

  /** Fills the free slots from the claimed deliveries. */
  private startSends(): void {
    while (
      this.inFlight.size < DELIVERY_CONCURRENCY &&
      this.ready.length > 0 &&
      !this.shutdown.signal.aborted
    ) {
      const { claimed, claimToken } = this.ready.shift() as (typeof this.ready)[number];
      const sending: Promise<void> = this.deliver(claimed, claimToken).finally(() => {
        this.inFlight.delete(sending);
        this.startSends();
        if (this.backlog) this.wake();
      });
      this.inFlight.add(sending);
    }
  }

  private async deliver({ delivery, message }: ClaimedDelivery, claimToken: string): Promise<void> {
    const channel = this.senders.get(delivery.channel);
    if (!channel?.send) return;
    const started = performance.now();
    const timeoutMs = this.config.get('NOTIFY_SEND_TIMEOUT_MS');
    const signal = AbortSignal.any([this.shutdown.signal, AbortSignal.timeout(timeoutMs)]);
    let outcome: DeliveryOutcome;
    try {
      outcome = await channel.send(delivery, message, signal);
    } catch (error) {
      // The contract says send does not throw; a bug in a channel is still just a failed attempt.
      outcome = {
        delivered: false,
        error: error instanceof Error ? error.message : String(error),
        latencyMs: performance.now() - started,
      };
    }
    // The slot is free once the send is over; the outcome is recorded with others meanwhile.
    const recording: Promise<void> = this.record(delivery, claimToken, outcome).finally(() =>
      this.recording.delete(recording),
    );
    this.recording.add(recording);
  }

  private async record(
    delivery: DueDelivery,
    claimToken: string,
    outcome: DeliveryOutcome,
  ): Promise<void> {
    try {
      if (this.shutdown.signal.aborted && !outcome.delivered) {
        // Our own shutdown cut the send short: not the receiver's fault, so no attempt is counted.
        await this.deliveries.release(delivery.id, claimToken);
        return;
      }
      const delayMs = retryDelayMs(delivery.attempts + 1, this.config.get('NOTIFY_RETRY_BASE_MS'));
      const recorded = await this.attempts.submit({ delivery, claimToken, outcome, delayMs });
      if (!recorded) return;
      // The retry is due then; nothing else would wake this instance for it.
      if (recorded.status === 'pending') this.timer.at(Date.now() + delayMs);
      this.metrics.deliveryAttempts.inc({ channel: delivery.channel, outcome: recorded.status });
      const context = {
        deliveryId: delivery.id,
        messageId: delivery.messageId,
        channel: delivery.channel,
        target: delivery.target,
        attempts: recorded.attempts,
        statusCode: outcome.statusCode,
        error: outcome.error,
      };
      if (recorded.status === 'dead') {
        this.logger.error(
          context,
          'Delivery dead-lettered after its last attempt; POST /admin/outbox/{messageId}/retry resends it',
        );
      } else if (recorded.status === 'cancelled') {
        this.logger.warn(
          context,
          'Delivery target gone: disabled, its pending deliveries cancelled',
        );
      } else if (recorded.status === 'pending') {
        this.logger.warn(context, 'Delivery failed; retrying with backoff');
      }
    } catch (error) {
      // Not recorded: the claim runs out and the delivery is sent again (at least once).
      this.logger.error(
        { err: error, deliveryId: delivery.id },
        'Recording a delivery attempt failed',
      );
    }
  }
}
