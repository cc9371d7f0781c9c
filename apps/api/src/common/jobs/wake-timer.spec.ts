import { WakeTimer } from './wake-timer';

describe('WakeTimer', () => {
  let wake: jest.Mock;
  let timer: WakeTimer;

  beforeEach(() => {
    jest.useFakeTimers();
    wake = jest.fn();
    timer = new WakeTimer(wake);
  });

  afterEach(() => {
    timer.cancel();
    jest.useRealTimers();
  });

  it('wakes once, at the earliest time asked for', async () => {
    const now = Date.now();
    timer.at(now + 500);
    timer.at(now + 300);
    timer.at(now + 900);
    expect(timer.pendingAt).toBe(now + 300);
    await jest.advanceTimersByTimeAsync(299);
    expect(wake).not.toHaveBeenCalled();
    await jest.advanceTimersByTimeAsync(1);
    expect(wake).toHaveBeenCalledTimes(1);
    await jest.advanceTimersByTimeAsync(10_000);
    expect(wake).toHaveBeenCalledTimes(1);
    expect(timer.pendingAt).toBe(Infinity);
  });

  it('plans the next wake from the work due, within the longest sleep', async () => {
    const now = Date.now();
    await timer.plan(() => Promise.resolve(now + 2000), 30_000);
    expect(timer.pendingAt).toBe(now + 2000);
    timer.cancel();

    await timer.plan(() => Promise.resolve(null), 30_000);
    expect(timer.pendingAt).toBe(now + 30_000);
    timer.cancel();

    // Work already due waits a moment, so a row that stays due cannot spin the loop.
    await timer.plan(() => Promise.resolve(now - 5000), 30_000);
    expect(timer.pendingAt).toBe(now + 20);
    timer.cancel();

    // The database away: try again soon, not after the longest sleep.
    await timer.plan(() => Promise.reject(new Error('connection refused')), 30_000);
    expect(timer.pendingAt).toBe(now + 1000);
  });
});
