import {
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnModuleDestroy,
} from '@nestjs/common';
import { LockProvider } from '@app/lock';
import { AppConfigService } from '../../config/app-config.service';
import { SeatStreamBus } from './seat-stream.bus';
import { SeatStreamRepository } from './seat-stream.repository';

const JOB_KEY = 'job:seat-stream';
const BATCH = 500;

/**
 * Turns the changes the seats trigger recorded into numbered messages and publishes them. One
 * instance at a time does it (the job lease; without Redis every instance may, and PostgreSQL's
 * advisory lock in seatlock_stream_batch makes them take turns). An instance with subscribers
 * looks every STREAM_POLL_MS; one without only drains every STREAM_IDLE_DRAIN_MS, so a sale nobody
 * watches costs one statement per few seconds, not one per hold.
 */
@Injectable()
export class SeatStreamPublisher implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(SeatStreamPublisher.name);
  private timer: NodeJS.Timeout | null = null;
  private watched = false;
  private lastDrain = 0;
  private stopped = false;

  constructor(
    private readonly repository: SeatStreamRepository,
    private readonly bus: SeatStreamBus,
    private readonly lock: LockProvider,
    private readonly config: AppConfigService,
  ) {}

  onApplicationBootstrap(): void {
    this.schedule();
  }

  onModuleDestroy(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }

  /** Whether this instance has subscribers (then it looks often). */
  watch(watched: boolean): void {
    this.watched = watched;
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
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.tick(), this.config.get('STREAM_POLL_MS'));
  }

  private async tick(): Promise<void> {
    try {
      const idle = Date.now() - this.lastDrain >= this.config.get('STREAM_IDLE_DRAIN_MS');
      if (this.watched || idle) {
        this.lastDrain = Date.now();
        await this.lock.usingOrAlone(
          JOB_KEY,
          { ttlMs: 5000 },
          (signal) => this.drain(signal),
          () => 0,
        );
      }
    } catch (error) {
      this.logger.warn({ err: error }, 'Seat stream drain failed; retrying');
    } finally {
      this.schedule();
    }
  }
}
