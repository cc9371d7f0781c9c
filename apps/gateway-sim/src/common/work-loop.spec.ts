import type { Logger } from '@nestjs/common';
import { type TickOutcome, WorkLoop } from './work-loop';

const IDLE_MS = 30_000;
const NOTHING_PENDING: TickOutcome = { handled: 0, nextDueAt: null };

/** A loop over a scripted tick that records when (fake clock) each pass started. */
function harness(next: () => TickOutcome | Promise<TickOutcome> = () => NOTHING_PENDING): {
  loop: WorkLoop;
  passes: number[];
  warn: jest.Mock;
} {
  const passes: number[] = [];
  const warn = jest.fn();
  const loop = new WorkLoop({
    tick: async () => {
      passes.push(Date.now());
      return next();
    },
    idleMs: IDLE_MS,
    logger: { warn } as unknown as Logger,
    retryMs: 1000,
    lockedRetryMs: 20,
  });
  return { loop, passes, warn };
}

describe('WorkLoop', () => {
  let t0: number;

  beforeEach(() => {
    jest.useFakeTimers();
    t0 = Date.now();
  });

  afterEach(() => {
    jest.useRealTimers();
  });

  it('runs one pass at start, then none while nothing is pending but the idle check', async () => {
    const { loop, passes } = harness();
    loop.start();
    await jest.advanceTimersByTimeAsync(10 * 60_000);
    // No fixed short poll: 10 minutes idle is the start pass plus one check every 30 s.
    expect(passes.map((at) => at - t0)).toEqual(Array.from({ length: 21 }, (_, i) => i * IDLE_MS));
    await loop.stop();
  });

  it('wakes at once for work written in-process', async () => {
    const { loop, passes } = harness();
    loop.start();
    await jest.advanceTimersByTimeAsync(5_000);
    expect(passes).toHaveLength(1);
    loop.wake();
    await jest.advanceTimersByTimeAsync(0);
    expect(passes.map((at) => at - t0)).toEqual([0, 5_000]);
    await loop.stop();
  });

  it('wakes when in-process work falls due, and a later wake does not postpone an earlier one', async () => {
    const { loop, passes } = harness();
    loop.start();
    await jest.advanceTimersByTimeAsync(1_000);
    loop.wake(300);
    loop.wake(2_000);
    await jest.advanceTimersByTimeAsync(299);
    expect(passes).toHaveLength(1);
    await jest.advanceTimersByTimeAsync(1);
    expect(passes.map((at) => at - t0)).toEqual([0, 1_300]);
    await loop.stop();
  });

  it('sleeps until the next due time a pass reports, capped by the idle check', async () => {
    const outcomes: TickOutcome[] = [
      { handled: 2, nextDueAt: t0 + 750 },
      { handled: 1, nextDueAt: t0 + 10 * IDLE_MS },
    ];
    const { loop, passes } = harness(() => outcomes.shift() ?? NOTHING_PENDING);
    loop.start();
    await jest.advanceTimersByTimeAsync(750 + IDLE_MS);
    expect(passes.map((at) => at - t0)).toEqual([0, 750, 750 + IDLE_MS]);
    await loop.stop();
  });

  it('runs again at once while a pass leaves due work behind (a full batch)', async () => {
    const outcomes: TickOutcome[] = [
      { handled: 50, nextDueAt: t0 - 5 },
      { handled: 50, nextDueAt: t0 - 1 },
    ];
    const { loop, passes } = harness(() => outcomes.shift() ?? NOTHING_PENDING);
    loop.start();
    await jest.advanceTimersByTimeAsync(IDLE_MS - 10);
    // Each a zero-delay timer after the last (Node runs those after ≥ 1 ms).
    expect(passes).toHaveLength(3);
    expect(passes[2] - t0).toBeLessThanOrEqual(2);
    await loop.stop();
  });

  it('does not spin on due work it could not claim (row-locked elsewhere)', async () => {
    const { loop, passes } = harness(() => ({ handled: 0, nextDueAt: Date.now() - 1 }));
    loop.start();
    await jest.advanceTimersByTimeAsync(100);
    expect(passes.map((at) => at - t0)).toEqual([0, 20, 40, 60, 80, 100]);
    await loop.stop();
  });

  it('never runs two passes at once: a wake during a pass runs the next right after it', async () => {
    let release: (outcome: TickOutcome) => void = () => undefined;
    let active = 0;
    let maxActive = 0;
    const { loop, passes } = harness(async () => {
      active += 1;
      maxActive = Math.max(maxActive, active);
      const outcome = await new Promise<TickOutcome>((resolve) => {
        release = resolve;
      });
      active -= 1;
      return outcome;
    });
    loop.start();
    await jest.advanceTimersByTimeAsync(0);
    expect(passes).toHaveLength(1);
    // Work written while the first pass runs: its statement may not have seen it.
    loop.wake();
    loop.wake();
    await jest.advanceTimersByTimeAsync(500);
    expect(passes).toHaveLength(1);
    release(NOTHING_PENDING);
    await jest.advanceTimersByTimeAsync(0);
    expect(passes.map((at) => at - t0)).toEqual([0, 500]);
    release(NOTHING_PENDING);
    await jest.advanceTimersByTimeAsync(IDLE_MS - 1);
    expect(passes).toHaveLength(2);
    expect(maxActive).toBe(1);
    await loop.stop();
  });

  it('logs a failed pass and tries again after the retry delay', async () => {
    let fail = true;
    const { loop, passes, warn } = harness(() => {
      if (fail) throw new Error('connection refused');
      return NOTHING_PENDING;
    });
    loop.start();
    await jest.advanceTimersByTimeAsync(999);
    expect(passes).toHaveLength(1);
    expect(warn).toHaveBeenCalledWith('tick failed: connection refused');
    fail = false;
    await jest.advanceTimersByTimeAsync(1);
    expect(passes.map((at) => at - t0)).toEqual([0, 1_000]);
    await loop.stop();
  });

  it('stop waits for the running pass, and nothing runs after it', async () => {
    let release: (outcome: TickOutcome) => void = () => undefined;
    const { loop, passes } = harness(
      () =>
        new Promise<TickOutcome>((resolve) => {
          release = resolve;
        }),
    );
    loop.start();
    await jest.advanceTimersByTimeAsync(0);
    let stopped = false;
    const stopping = loop.stop().then(() => {
      stopped = true;
    });
    await jest.advanceTimersByTimeAsync(0);
    expect(stopped).toBe(false);
    release({ handled: 1, nextDueAt: Date.now() });
    await stopping;
    loop.wake();
    await jest.advanceTimersByTimeAsync(10 * IDLE_MS);
    expect(passes).toHaveLength(1);
  });
});
