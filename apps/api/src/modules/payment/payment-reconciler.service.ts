import {
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnModuleDestroy,
} from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import { LockProvider } from '@app/lock';
import { IdempotencyService } from '../../common/idempotency/idempotency.service';
import { AppConfigService } from '../../config/app-config.service';
import { PaymentService } from './payment.service';

const JOB_KEY = 'job:payment-reconciler';

/**
 * Finishes payments that a crash, a gateway outage or a lost lock left half-done (authorized but not
 * confirmed, confirmed but not captured, owed a void or a refund), and drops idempotency answers past
 * their 24 h. One instance at a time (the job lease); with Redis unreachable it runs anyway, since
 * every step is a conditional write and every gateway call idempotent.
 */
@Injectable()
export class PaymentReconcilerService implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(PaymentReconcilerService.name);
  private running = false;

  constructor(
    private readonly payments: PaymentService,
    private readonly idempotency: IdempotencyService,
    private readonly lock: LockProvider,
    private readonly config: AppConfigService,
    private readonly scheduler: SchedulerRegistry,
  ) {}

  onApplicationBootstrap(): void {
    const interval = setInterval(() => void this.run(), this.config.get('RECONCILE_INTERVAL_MS'));
    this.scheduler.addInterval(PaymentReconcilerService.name, interval);
  }

  onModuleDestroy(): void {
    if (this.scheduler.doesExist('interval', PaymentReconcilerService.name)) {
      this.scheduler.deleteInterval(PaymentReconcilerService.name);
    }
  }

  /** One pass; answers how many payment steps it finished (null if another instance had the job). */
  async run(): Promise<number | null> {
    if (this.running) return null;
    this.running = true;
    // A step younger than the gateway's whole budget may still be running in a request.
    const graceMs = this.config.get('GATEWAY_TIMEOUT_MS') + 1000;
    const job = async (signal?: AbortSignal): Promise<number> => {
      const finished = await this.payments.reconcile(graceMs, signal);
      await this.idempotency.purgeExpired();
      return finished;
    };
    try {
      const ttlMs = Math.max(this.config.get('RECONCILE_INTERVAL_MS') * 3, 10_000);
      return await this.lock.usingOrAlone(JOB_KEY, { ttlMs }, job, () => null);
    } catch (error) {
      this.logger.error({ err: error }, 'Payment reconciliation failed; retrying next interval');
      return null;
    } finally {
      this.running = false;
    }
  }
}
