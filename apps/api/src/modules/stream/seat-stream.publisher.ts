import {
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnModuleDestroy,
} from '@nestjs/common';
import { LockProvider } from '@app/lock';
import { IntervalJob } from '../../common/jobs/interval-job';
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
  private readonly job: IntervalJob<number>;
  private watched = false;
  private lastDrain = 0;
  private stopped = false;

  constructor(
    private readonly repository: SeatStreamRepository,
    private readonly bus: SeatStreamBus,
    lock: LockProvider,
    private readonly config: AppConfigService,
  ) {
    this.job = new IntervalJob(lock, this.logger, {
      name: 'Seat stream drain',
      intervalMs: config.get('STREAM_POLL_MS'),
      lease: { key: JOB_KEY, ttlMs: 5000 },
      due: () => this.due(),
      run: (signal) => this.drain(signal),
      // A drain that took long found a backlog; the next one waits a whole interval after it.
      fixedDelay: true,
      // Every STREAM_POLL_MS while PostgreSQL is away: a warning, as subscribers resync anyway.
      failureLevel: 'warn',
    });
  }

  onApplicationBootstrap(): void {
    this.job.start();
  }

  onModuleDestroy(): void {
    this.stopped = true;
    this.job.stop();
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

  /** Whether this tick drains: always with subscribers, else once per STREAM_IDLE_DRAIN_MS. */
  private due(): boolean {
    const idle = Date.now() - this.lastDrain >= this.config.get('STREAM_IDLE_DRAIN_MS');
    if (!this.watched && !idle) return false;
    this.lastDrain = Date.now();
    return true;
  }
}
