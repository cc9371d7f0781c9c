import {
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnModuleDestroy,
} from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import { type Lease, LockProvider, LockUnavailableError } from '@app/lock';
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
    let lease: Lease | null = null;
    try {
      // Per instance: only this instance knows which of its releases Redis missed.
      await this.bookings.retryUnreleasedLocks();
      if (this.lock.mode === 'redis') {
        try {
          lease = await this.lock.tryAcquire(JOB_KEY, this.config.get('SWEEP_INTERVAL_MS') * 5);
          if (!lease) return null;
        } catch (error) {
          if (!(error instanceof LockUnavailableError)) throw error;
        }
      }
      const expired = await this.bookings.expireDueHolds();
      if (expired > 0) this.logger.log({ expired }, 'Expired holds past their TTL');
      return expired;
    } catch (error) {
      this.logger.error({ err: error }, 'Hold sweep failed; retrying next interval');
      return null;
    } finally {
      if (lease) await this.lock.release(lease).catch(() => undefined);
      this.running = false;
    }
  }
}
