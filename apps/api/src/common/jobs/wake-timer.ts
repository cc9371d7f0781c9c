/** setTimeout's longest delay (about 24.8 days); a later wake is asked for again when this one fires. */
const LONGEST_DELAY_MS = 2 ** 31 - 1;

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

  cancel(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.dueAt = Infinity;
  }
}
