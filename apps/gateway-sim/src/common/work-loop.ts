import type { Logger } from '@nestjs/common';

/** What one pass found, for the loop to decide when to run next. */
export interface TickOutcome {
  /** Items this pass handled. */
  handled: number;
  /** When the earliest work still pending is due (epoch ms, `Date.now()` clock); null: none. */
  nextDueAt: number | null;
}

export interface WorkLoopOptions {
  /** Claims and does what is due; reads the next due time in the same statement. */
  tick: () => Promise<TickOutcome>;
  /** The longest sleep: a safety net for work no wake announced (written by another instance). */
  idleMs: number;
  logger: Logger;
  /** After a failed pass (PostgreSQL unreachable, say). */
  retryMs?: number;
  /**
   * Work due but not claimable is row-locked by another transaction for a moment: look again after
   * this long instead of spinning on it.
   */
  lockedRetryMs?: number;
}

/**
 * Runs `tick` when work is due, not on a fixed poll: at start; when `wake` says in-process work was
 * written (at once, or when it falls due); at the next due time a pass reported; and at the latest
 * `idleMs` after the last pass. One pass at a time: a wake during a pass runs the next right after
 * it. `stop()` waits for a running pass, so pools can close after it.
 */
export class WorkLoop {
  private timer?: NodeJS.Timeout;
  /** When the armed timer fires (epoch ms); Infinity when none is armed. */
  private timerAt = Infinity;
  private running?: Promise<void>;
  /** Set from the moment a pass starts (before its first await) until it has armed the next. */
  private busy = false;
  /** The earliest wake asked for during the running pass (its statement may not have seen it). */
  private wokenDuringTickAt = Infinity;
  private stopped = true;
  private readonly retryMs: number;
  private readonly lockedRetryMs: number;

  constructor(private readonly options: WorkLoopOptions) {
    this.retryMs = options.retryMs ?? 1000;
    this.lockedRetryMs = options.lockedRetryMs ?? 20;
  }

  start(): void {
    this.stopped = false;
    this.arm(0);
  }

  /** Work written by this process falls due in `inMs`: run a pass then (unless one is sooner). */
  wake(inMs = 0): void {
    if (this.stopped) return;
    if (this.busy) {
      this.wokenDuringTickAt = Math.min(this.wokenDuringTickAt, Date.now() + inMs);
      return;
    }
    this.arm(inMs);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.disarm();
    await this.running;
  }

  /** Runs a pass in `delayMs`, unless one is armed sooner already. */
  private arm(delayMs: number): void {
    const delay = Math.max(0, delayMs);
    const at = Date.now() + delay;
    if (at >= this.timerAt) return;
    this.disarm();
    this.timerAt = at;
    this.timer = setTimeout(() => this.run(), delay);
  }

  private disarm(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = Infinity;
  }

  private run(): void {
    this.disarm();
    this.busy = true;
    this.wokenDuringTickAt = Infinity;
    this.running = this.pass();
  }

  private async pass(): Promise<void> {
    let delayMs: number;
    try {
      delayMs = this.delayAfter(await this.options.tick());
    } catch (error) {
      this.options.logger.warn(
        `tick failed: ${error instanceof Error ? error.message : String(error)}`,
      );
      delayMs = this.retryMs;
    }
    this.busy = false;
    this.running = undefined;
    if (!this.stopped) this.arm(Math.min(delayMs, this.wokenDuringTickAt - Date.now()));
  }

  private delayAfter({ handled, nextDueAt }: TickOutcome): number {
    if (nextDueAt === null) return this.options.idleMs;
    const dueInMs = nextDueAt - Date.now();
    if (dueInMs <= 0 && handled === 0) return this.lockedRetryMs;
    return Math.min(Math.max(0, dueInMs), this.options.idleMs);
  }
}
