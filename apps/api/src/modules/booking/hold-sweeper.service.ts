import {
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnModuleDestroy,
} from '@nestjs/common';
import { LockProvider } from '@app/lock';
import { IntervalJob } from '../../common/jobs/interval-job';
import { AppConfigService } from '../../config/app-config.service';
import { BookingService } from './booking.service';

const JOB_KEY = 'job:hold-sweeper';
/** Without a known lapse, the sweeper still looks this often: holds of an instance that died. */
const LONGEST_SLEEP_MS = 60_000;
/** Releases Redis missed are retried this soon. */
const RELEASE_RETRY_MS = 1000;

/**
 * Turns holds past their TTL into `expired` and frees their seats. It sleeps until the next hold
 * lapses (asked of PostgreSQL after each run, and told by this instance's holds and extensions),
 * at most one run per SWEEP_INTERVAL_MS, so an idle API costs nothing. One instance at a time runs it
 * (the job lease, renewed while it runs); if Redis is unreachable it runs anyway — the conditional
 * writes make a double run harmless, the lock only saves the work.
 */
@Injectable()
export class HoldSweeperService implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(HoldSweeperService.name);
  private readonly job: IntervalJob<number>;

  constructor(
    private readonly bookings: BookingService,
    lock: LockProvider,
    config: AppConfigService,
  ) {
    const intervalMs = config.get('SWEEP_INTERVAL_MS');
    this.job = new IntervalJob(lock, this.logger, {
      name: 'Hold sweep',
      intervalMs,
      maxWaitMs: LONGEST_SLEEP_MS,
      nextDueAt: () => this.nextDueAt(),
      lease: { key: JOB_KEY, ttlMs: Math.max(intervalMs * 5, 3000) },
      // Per instance: only this instance knows which of its releases Redis missed.
      local: () => this.bookings.retryUnreleasedLocks(),
      run: async (signal) => {
        const expired = await this.bookings.expireDueHolds(signal);
        if (expired) this.logger.log({ expired }, 'Expired holds past their TTL');
        return expired;
      },
    });
  }

  onApplicationBootstrap(): void {
    this.bookings.onSweepDue((at) => this.job.wakeAt(at), RELEASE_RETRY_MS);
    this.job.start();
  }

  onModuleDestroy(): void {
    this.job.stop();
  }

  private async nextDueAt(): Promise<number | null> {
    const lapse = await this.bookings.nextHoldLapse();
    if (this.bookings.unreleasedLocks === 0) return lapse;
    return Math.min(lapse ?? Infinity, Date.now() + RELEASE_RETRY_MS);
  }

  /** One pass; returns how many holds it expired (null if it did not run: see IntervalJob). */
  sweep(): Promise<number | null> {
    return this.job.runNow();
  }
}
