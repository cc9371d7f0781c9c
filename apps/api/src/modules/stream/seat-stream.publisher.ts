import {
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnModuleDestroy,
} from '@nestjs/common';
import { LockProvider } from '@app/lock';
import { AppConfigService } from '../../config/app-config.service';
import { PgListener } from '../../database/pg-listener';
import { SeatStreamBus } from './seat-stream.bus';
import { SeatStreamRepository } from './seat-stream.repository';

const JOB_KEY = 'job:seat-stream';
const BATCH = 500;
/** The channel the seats trigger notifies on when a transaction that changed seats commits. */
const SEAT_CHANGES_CHANNEL = 'seat_changes';

/**
 * Turns the changes the seats trigger recorded into numbered messages and publishes them, woken by
 * the commits that record them (LISTEN), never by a clock while nothing changes. A wake waits
 * STREAM_POLL_MS on an instance with subscribers, so a burst of commits becomes one batch, and
 * STREAM_IDLE_DRAIN_MS (1 s) on one without, so a sale nobody watches here costs one statement a
 * second, not one per hold. One instance at a time drains (the job lease); one whose wake finds the
 * lease taken looks again after its wait, so a change committed as another's drain ended is not left
 * for that instance's longer wait. Without Redis every instance drains and PostgreSQL's advisory
 * lock in seatlock_stream_batch makes them take turns. While the LISTEN connection is down, or
 * while subscribers watch (a safety net for a lease held by an instance that died), it also looks
 * on a timer.
 */
@Injectable()
export class SeatStreamPublisher implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(SeatStreamPublisher.name);
  private readonly listener: PgListener;
  private timer: NodeJS.Timeout | null = null;
  private dueAt = Infinity;
  private running = false;
  /** Woken while a drain ran: it runs again when done. */
  private again = false;
  private safetyNet: NodeJS.Timeout | null = null;
  private watched = false;
  private stopped = false;

  constructor(
    private readonly repository: SeatStreamRepository,
    private readonly bus: SeatStreamBus,
    private readonly lock: LockProvider,
    private readonly config: AppConfigService,
  ) {
    this.listener = new PgListener(config.get('DATABASE_URL'), SEAT_CHANGES_CHANNEL, () =>
      this.wake(),
    );
  }

  onApplicationBootstrap(): void {
    // The listener wakes us once connected, which also publishes what piled up meanwhile.
    this.listener.start();
  }

  async onModuleDestroy(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.safetyNet) clearInterval(this.safetyNet);
    await this.listener.stop();
  }

  /** Whether this instance has subscribers (then a wake publishes within STREAM_POLL_MS). */
  watch(watched: boolean): void {
    if (watched === this.watched) return;
    this.watched = watched;
    if (this.safetyNet) clearInterval(this.safetyNet);
    this.safetyNet = null;
    if (!watched) return;
    this.safetyNet = setInterval(() => {
      if (!this.listener.listening) this.wake();
    }, this.config.get('STREAM_POLL_MS'));
    this.safetyNet.unref();
    // A wake already waiting out the idle delay now only waits the short one.
    if (this.timer) this.schedule();
  }

  /** Asks for a drain after the wait this instance's watchers allow; repeated wakes coalesce. */
  wake(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.schedule();
  }

  /** One pass: every recorded change published, batch after batch. Answers how many messages. */
  async drain(signal?: AbortSignal): Promise<number> {
    let published = 0;
    for (;;) {
      const messages = await this.repository.takeBatch(BATCH);
      if (messages.length > 0 && !(await this.bus.publish(messages))) {
        this.logger.warn(
          { messages: messages.length },
          'Seat stream messages not published; subscribers will take a new snapshot',
        );
      }
      published += messages.length;
      if (messages.length < BATCH || signal?.aborted || this.stopped) return published;
    }
  }

  private schedule(): void {
    const wait = this.config.get(this.watched ? 'STREAM_POLL_MS' : 'STREAM_IDLE_DRAIN_MS');
    const dueAt = Date.now() + wait;
    if (this.timer && this.dueAt <= dueAt) return;
    if (this.timer) clearTimeout(this.timer);
    this.dueAt = dueAt;
    this.timer = setTimeout(() => void this.run(), wait);
  }

  private async run(): Promise<void> {
    this.timer = null;
    this.dueAt = Infinity;
    this.running = true;
    this.again = false;
    try {
      const busy = await this.lock.usingOrAlone(
        JOB_KEY,
        { ttlMs: 5000 },
        async (signal) => (await this.drain(signal), false),
        () => true,
      );
      // Another instance is draining: it may have taken its last batch before our wake's commit.
      if (busy) this.again = true;
    } catch (error) {
      this.logger.warn({ err: error }, 'Seat stream drain failed; retrying');
      this.again = true;
    } finally {
      this.running = false;
      if (this.again) this.wake();
    }
  }
}
