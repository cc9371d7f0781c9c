/** setTimeout's longest delay (about 24.8 days); a later wake is asked for again when this one fires. */
const LONGEST_DELAY_MS = 2 ** 31 - 1;
/** Work found due already waits this long, so a row that stays due cannot spin the loop. */
const MIN_GAP_MS = 20;

/**
 * One timer for background work that sleeps until its next work is due instead of polling:
 * `at(time)` asks for a wake then, the earliest time asked for wins, and a wake fires once.
 */
export class WakeTimer {
  private timer: NodeJS.Timeout | null = null;
  private dueAt = Infinity;

  constructor(private readonly onWake: () => void) {}

  /** When the pending wake fires (epoch ms), Infinity when none is pending. */
  get pendingAt(): number {
    return this.dueAt;
  }

  /** A wake at `time` (epoch ms), unless one is already due sooner; null or Infinity asks nothing. */
  at(time: number | null): void {
    if (time === null || !(time < this.dueAt)) return;
    this.cancel();
    this.dueAt = time;
    this.timer = setTimeout(
      () => {
        this.timer = null;
        this.dueAt = Infinity;
        this.onWake();
      },
      Math.min(Math.max(0, time - Date.now()), LONGEST_DELAY_MS),
    );
    // A sleeping job must not keep the process alive.
    this.timer.unref();
  }

  /**
   * After a round of work: a wake when `nextDue` says the next work falls due, and within
   * `longestSleepMs` in any case (work another instance left behind when it died, a wake-up lost
   * while LISTEN was down); soon when the question fails (the database away).
   */
  async plan(nextDue: () => Promise<number | null>, longestSleepMs: number): Promise<void> {
    const due = await nextDue().catch(() => Date.now() + Math.min(longestSleepMs, 1000));
    const now = Date.now();
    this.at(Math.max(Math.min(due ?? Infinity, now + longestSleepMs), now + MIN_GAP_MS));
  }

  cancel(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.dueAt = Infinity;
  }
}
