import type { LoggerService } from '@nestjs/common';
import type { LockProvider } from '@app/lock';
import { WakeTimer } from './wake-timer';

/** After a failed run, the next try comes this soon (or after intervalMs, if that is longer). */
const RETRY_AFTER_FAILURE_MS = 1000;

export interface IntervalJobOptions<T> {
  /** Names the job in its failure log ("<name> failed; retrying"). */
  name: string;
  /** The least time between two runs: work due sooner waits, so a busy job batches it. */
  intervalMs: number;
  /**
   * When the next work is due (epoch ms; null: none known), asked after each run under the lease.
   * Without it the job runs every `intervalMs`.
   */
  nextDueAt?: () => Promise<number | null>;
  /** The longest sleep when `nextDueAt` knows of nothing (work another instance left); default intervalMs. */
  maxWaitMs?: number;
  /**
   * The cross-instance job lease: one instance at a time runs `run`. With the lock off or Redis
   * unreachable `run` runs anyway (usingOrAlone), so a job must be harmless when run twice.
   */
  lease: { key: string; ttlMs: number };
  /** The work, under the lease; `signal` fires if the lease is lost (absent without a lease). */
  run: (signal?: AbortSignal) => Promise<T>;
  /** Work every instance does on each run before the lease is asked for (what only it knows). */
  local?: () => Promise<unknown>;
}

/**
 * A background job every instance schedules and one at a time runs. It sleeps until its next work
 * is due (`nextDueAt`, or `wakeAt` from this instance's own writes), never less than `intervalMs`
 * after its previous run nor more than `maxWaitMs`; an idle job costs nothing but its rare safety
 * run. A run is never re-entered, and a failure is logged and retried. The owner calls `start` and
 * `stop` from its lifecycle hooks; tests call `runNow`.
 */
export class IntervalJob<T> {
  private readonly timer = new WakeTimer(() => this.tick());
  private running = false;
  private again = false;
  private stopped = true;
  private lastRunAt = 0;

  constructor(
    private readonly lock: Pick<LockProvider, 'usingOrAlone'>,
    private readonly logger: Pick<LoggerService, 'error'>,
    private readonly options: IntervalJobOptions<T>,
  ) {}

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    // The first run waits a whole interval, as between runs: a quiet job (a long interval) stays quiet.
    this.lastRunAt = Date.now();
    void this.plan();
  }

  /** No run after this one; a run in progress finishes on its own. */
  stop(): void {
    this.stopped = true;
    this.timer.cancel();
  }

  /** Work this instance just made falls due at `time` (epoch ms): run then (or after the interval). */
  wakeAt(time: number): void {
    if (this.stopped) return;
    this.timer.at(Math.max(time, this.lastRunAt + this.options.intervalMs));
  }

  /**
   * One run now. Answers what `run` answered, or null when it did not run: the previous run is
   * still going, another instance holds the lease, or it failed (logged).
   */
  async runNow(): Promise<T | null> {
    if (this.running) return null;
    this.running = true;
    this.lastRunAt = Date.now();
    const { name, lease, run, local } = this.options;
    let outcome: 'ran' | 'busy' | 'failed' = 'busy';
    try {
      await local?.();
      return await this.lock.usingOrAlone(
        lease.key,
        { ttlMs: lease.ttlMs },
        async (signal) => {
          const result = await run(signal);
          outcome = 'ran';
          return result;
        },
        () => null,
      );
    } catch (error) {
      outcome = 'failed';
      this.logger.error({ err: error, job: name }, `${name} failed; retrying`);
      return null;
    } finally {
      this.running = false;
      void this.plan(outcome);
    }
  }

  private tick(): void {
    if (this.running) this.again = true;
    else void this.runNow();
  }

  /**
   * Sets the next wake: after a run, when its next work is due; after a failure, soon; when another
   * instance ran it, that instance plans for everyone, so only the longest wait.
   */
  private async plan(outcome: 'ran' | 'busy' | 'failed' = 'ran'): Promise<void> {
    if (this.stopped) return;
    const { intervalMs, nextDueAt } = this.options;
    const maxWaitMs = this.options.maxWaitMs ?? intervalMs;
    const now = Date.now();
    let due: number | null = null;
    if (this.again) due = now;
    else if (outcome === 'failed') due = now + Math.min(maxWaitMs, RETRY_AFTER_FAILURE_MS);
    else if (outcome === 'ran' && nextDueAt) due = await nextDueAt().catch(() => now);
    this.again = false;
    if (this.stopped) return;
    const latest = now + (nextDueAt ? maxWaitMs : intervalMs);
    this.timer.at(Math.max(Math.min(due ?? latest, latest), this.lastRunAt + intervalMs));
  }
}
