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
});
