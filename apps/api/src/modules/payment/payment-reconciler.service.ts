import {
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnModuleDestroy,
} from '@nestjs/common';
import { LockProvider } from '@app/lock';
import { IntervalJob } from '../../common/jobs/interval-job';
import { IdempotencyRepository } from '../../common/idempotency/idempotency.repository';
import { AppConfigService } from '../../config/app-config.service';
import { PaymentGateway } from './gateway/payment-gateway';
import { PaymentMetrics } from './payment.metrics';
import { PaymentRepository, type PaymentRow } from './payment.repository';
import { PaymentWorkflowService } from './payment-workflow.service';

const JOB_KEY = 'job:payment-reconciler';

/** An asynchronous authorization the gateway's webhook has not settled after this long is asked about. */
const ASYNC_STALE_MS = 60_000;

const BATCH_SIZE = 50;

/** Without a payment known to need it, the reconciler still looks this often (another instance's). */
const LONGEST_SLEEP_MS = 60_000;

/**
 * Finishes payments that a crash, a gateway outage or a lost lock left half-done (authorized but not
 * confirmed, confirmed but not captured, owed a void or a refund), and drops idempotency answers past
 * their 24 h. One instance at a time (the job lease); with Redis unreachable it runs anyway, since
 * every step is a conditional write and every gateway call idempotent.
 */
@Injectable()
export class PaymentReconcilerService implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(PaymentReconcilerService.name);
  private readonly job: IntervalJob<number>;

  constructor(
    private readonly payments: PaymentRepository,
    private readonly workflow: PaymentWorkflowService,
    private readonly gateway: PaymentGateway,
    private readonly idempotency: IdempotencyRepository,
    lock: LockProvider,
    private readonly metrics: PaymentMetrics,
    private readonly config: AppConfigService,
  ) {
    const intervalMs = config.get('RECONCILE_INTERVAL_MS');
    this.job = new IntervalJob(lock, this.logger, {
      name: 'Payment reconciliation',
      intervalMs,
      maxWaitMs: LONGEST_SLEEP_MS,
      nextDueAt: () => this.payments.nextDue(this.graceMs(), this.staleMs()),
      lease: { key: JOB_KEY, ttlMs: Math.max(intervalMs * 3, 10_000) },
      run: (signal) => this.runLeased(signal),
    });
  }

  onApplicationBootstrap(): void {
    // A step this instance left undone is looked at once its grace is over, not on a poll.
    this.workflow.onUnsettled((payment) =>
      this.job.wakeAt(
        Date.parse(payment.updated_at) + (payment.next_action ? this.graceMs() : this.staleMs()),
      ),
    );
    this.job.start();
  }

  onModuleDestroy(): void {
    this.job.stop();
  }

  /** One pass; answers how many payment steps it finished (null if it did not run: see IntervalJob). */
  run(): Promise<number | null> {
    return this.job.runNow();
  }

  /** A step younger than the gateway's whole budget may still be running in a request. */
  private graceMs(): number {
    return this.config.get('GATEWAY_TIMEOUT_MS') + 1000;
  }

  private staleMs(): number {
    return Math.max(this.graceMs(), ASYNC_STALE_MS);
  }

  private async runLeased(signal?: AbortSignal): Promise<number> {
    const graceMs = this.graceMs();
    const finished = await this.reconcile(graceMs, signal);
    await this.idempotency.purgeExpired();
    return finished;
  }

  /**
   * Finishes payments whose next step a crash, an outage or a lost lock left undone. Steps that may
   * still be running in a request are left alone for `graceMs`.
   */
  private async reconcile(graceMs: number, signal?: AbortSignal): Promise<number> {
    const due = await this.payments.due(graceMs, BATCH_SIZE);
    due.push(...(await this.askAboutPending(this.staleMs(), signal)));
    let finished = 0;
    for (const payment of due) {
      if (!payment.next_action) continue;
      if (signal?.aborted) break;
      const action = payment.next_action;
      try {
        const done = await this.workflow.takeOver(payment);
        if (done) {
          finished += 1;
          this.metrics.reconciled.inc({ action });
          this.logger.log(
            { paymentId: payment.id, action, status: done.payment.status },
            'Reconciler finished a payment step',
          );
        }
      } catch (error) {
        this.logger.warn(
          { err: error, paymentId: payment.id, action },
          'Reconciler could not finish a payment step; retrying next pass',
        );
      }
    }
    return finished;
  }

  /**
   * Asynchronous authorizations whose webhook never came: asks the gateway, and answers those it
   * has decided (their decision recorded), for the steps that follow.
   */
  private async askAboutPending(olderThanMs: number, signal?: AbortSignal): Promise<PaymentRow[]> {
    const decided: PaymentRow[] = [];
    for (const payment of await this.payments.stalePending(olderThanMs, BATCH_SIZE)) {
      if (signal?.aborted) break;
      try {
        const intent = await this.gateway.retrieve(this.workflow.intentOf(payment), signal);
        if (intent.status === 'processing') {
          await this.payments.touch(payment.id);
        } else {
          const { payment: recorded } = await this.workflow.recordIntent(
            { payment, booking: null },
            null,
            intent,
          );
          decided.push(recorded);
        }
      } catch (error) {
        this.logger.warn(
          { err: error, paymentId: payment.id },
          'Could not ask the gateway about a pending payment',
        );
      }
    }
    return decided;
  }
}
