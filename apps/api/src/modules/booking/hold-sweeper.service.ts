import {
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnModuleDestroy,
} from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import { LockProvider } from '@app/lock';
import { AppConfigService } from '../../config/app-config.service';
import { BookingService } from './booking.service';

const JOB_KEY = 'job:hold-sweeper';

/**
 * Turns holds past their TTL into `expired` and frees their seats. One instance at a time runs it
 * (tryAcquire); if Redis is unreachable it runs anyway — the conditional writes make a double run
 * harmless, the lock only saves the work.
 */
@Injectable()
export class HoldSweeperService implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(HoldSweeperService.name);
  private running = false;

  constructor(
    private readonly bookings: BookingService,
    private readonly lock: LockProvider,
    private readonly config: AppConfigService,
    private readonly scheduler: SchedulerRegistry,
  ) {}

  onApplicationBootstrap(): void {
    const interval = setInterval(() => void this.sweep(), this.config.get('SWEEP_INTERVAL_MS'));
    this.scheduler.addInterval(HoldSweeperService.name, interval);
  }

  onModuleDestroy(): void {
    if (this.scheduler.doesExist('interval', HoldSweeperService.name)) {
      this.scheduler.deleteInterval(HoldSweeperService.name);
    }
  }

  /** One pass; returns how many holds it expired (or null if another instance had the job). */
  async sweep(): Promise<number | null> {
    if (this.running) return null;
    this.running = true;
    try {
      // Per instance: only this instance knows which of its releases Redis missed.
      await this.bookings.retryUnreleasedLocks();
      const expired = await this.runOnce((signal) => this.bookings.expireDueHolds(signal));
      if (expired) this.logger.log({ expired }, 'Expired holds past their TTL');
      return expired;
    } catch (error) {
      this.logger.error({ err: error }, 'Hold sweep failed; retrying next interval');
      return null;
    } finally {
      this.running = false;
    }
  }

  /**
   * Runs the job under the cross-instance job lease (renewed while it runs; `signal` fires if it is
   * lost). Another instance holding it: null. Redis unreachable or off: runs anyway.
   */
  private async runOnce(job: (signal?: AbortSignal) => Promise<number>): Promise<number | null> {
    const ttlMs = Math.max(this.config.get('SWEEP_INTERVAL_MS') * 5, 3000);
    return this.lock.usingOrAlone(JOB_KEY, { ttlMs }, job, () => null);
  }
}
