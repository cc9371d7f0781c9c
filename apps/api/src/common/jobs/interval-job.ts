import type { LoggerService } from '@nestjs/common';
import type { LockProvider } from '@app/lock';

export interface IntervalJobOptions<T> {
  /** Names the job in its failure log ("<name> failed; retrying next interval"). */
  name: string;
  intervalMs: number;
  /**
   * The cross-instance job lease: one instance at a time runs `run`. With the lock off or Redis
   * unreachable `run` runs anyway (usingOrAlone), so a job must be harmless when run twice.
   */
  lease: { key: string; ttlMs: number };
  /** The work, under the lease; `signal` fires if the lease is lost (absent without a lease). */
  run: (signal?: AbortSignal) => Promise<T>;
  /** Work every instance does on each tick before the lease is asked for (what only it knows). */
  local?: () => Promise<unknown>;
}

/**
 * A background job every instance schedules and one at a time runs: a tick every `intervalMs`,
 * skipped while this instance's previous run is still going, the work under the job lease, and a
 * failure logged and left to the next tick. The owner calls `start` and `stop` from its lifecycle
 * hooks; tests call `runNow`.
 */
export class IntervalJob<T> {
  private cancel: (() => void) | null = null;
  private running = false;
  private stopped = true;

  constructor(
    private readonly lock: Pick<LockProvider, 'usingOrAlone'>,
    private readonly logger: Pick<LoggerService, 'error'>,
    private readonly options: IntervalJobOptions<T>,
  ) {}

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    const interval = setInterval(() => void this.runNow(), this.options.intervalMs);
    this.cancel = () => clearInterval(interval);
  }

  /** No tick after this one; a run in progress finishes on its own. */
  stop(): void {
    this.stopped = true;
    this.cancel?.();
    this.cancel = null;
  }

  /**
   * One tick now. Answers what `run` answered, or null when it did not run: the previous run is
   * still going, another instance holds the lease, or it failed (logged).
   */
  async runNow(): Promise<T | null> {
    if (this.running) return null;
    this.running = true;
    const { name, lease, run, local } = this.options;
    try {
      await local?.();
      return await this.lock.usingOrAlone(lease.key, { ttlMs: lease.ttlMs }, run, () => null);
    } catch (error) {
      this.logger.error({ err: error, job: name }, `${name} failed; retrying next interval`);
      return null;
    } finally {
      this.running = false;
    }
  }
}
