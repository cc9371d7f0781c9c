import type { LockProvider } from '@app/lock';
import { IntervalJob, type IntervalJobOptions } from './interval-job';

type UsingOrAlone = LockProvider['usingOrAlone'];

/** A lock that grants every lease (or, when `busy`, none), recording what was asked of it. */
function fakeLock(busy = false): { usingOrAlone: jest.Mock; signal: AbortSignal } {
  const signal = new AbortController().signal;
  const usingOrAlone = jest.fn((...[, , work, onBusy]: Parameters<UsingOrAlone>) =>
    busy ? Promise.resolve(onBusy()) : work(signal),
  );
  return { usingOrAlone, signal };
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

describe('IntervalJob', () => {
  const logger = { error: jest.fn(), warn: jest.fn() };
  let job: IntervalJob<number> | undefined;

  function makeJob(
    lock: ReturnType<typeof fakeLock>,
    options: Partial<IntervalJobOptions<number>> & Pick<IntervalJobOptions<number>, 'run'>,
  ): IntervalJob<number> {
    job = new IntervalJob(lock, logger, {
      name: 'Test job',
      intervalMs: 1000,
      lease: { key: 'job:test', ttlMs: 5000 },
      ...options,
    });
    return job;
  }

  beforeEach(() => {
    jest.useFakeTimers();
    logger.error.mockReset();
    logger.warn.mockReset();
  });

  afterEach(() => {
    job?.stop();
    jest.useRealTimers();
  });

  it('runs every interval under the job lease, handing the work its signal', async () => {
    const lock = fakeLock();
    const run = jest.fn((signal?: AbortSignal) => Promise.resolve(signal ? 1 : 0));
    makeJob(lock, { run }).start();

    await jest.advanceTimersByTimeAsync(999);
    expect(run).not.toHaveBeenCalled();
    await jest.advanceTimersByTimeAsync(2001);
    expect(run).toHaveBeenCalledTimes(3);
    expect(run).toHaveBeenCalledWith(lock.signal);
    expect(lock.usingOrAlone).toHaveBeenCalledTimes(3);
    expect(lock.usingOrAlone).toHaveBeenCalledWith(
      'job:test',
      { ttlMs: 5000 },
      expect.any(Function),
      expect.any(Function),
    );
  });

  it('answers null and skips the work when another instance holds the lease', async () => {
    const run = jest.fn(() => Promise.resolve(7));
    expect(await makeJob(fakeLock(true), { run }).runNow()).toBeNull();
    expect(run).not.toHaveBeenCalled();
    expect(await makeJob(fakeLock(), { run }).runNow()).toBe(7);
  });

  it('never re-enters a run; the next one comes an interval after the last began', async () => {
    const gate = deferred();
    const run = jest.fn(async () => {
      await gate.promise;
      return 1;
    });
    const subject = makeJob(fakeLock(), { run });
    subject.start();

    await jest.advanceTimersByTimeAsync(3500);
    expect(run).toHaveBeenCalledTimes(1);
    expect(await subject.runNow()).toBeNull();
    subject.wakeAt(Date.now());
    await jest.advanceTimersByTimeAsync(100);
    expect(run).toHaveBeenCalledTimes(1);

    gate.resolve();
    // The wake that came during the run is not lost: it runs as soon as the run is over.
    await jest.advanceTimersByTimeAsync(0);
    expect(run).toHaveBeenCalledTimes(2);
  });

  it('sleeps until the next work is due, no sooner than the interval, no longer than maxWaitMs', async () => {
    const dues: (number | null)[] = [];
    const nextDueAt = jest.fn(() => Promise.resolve(dues.shift() ?? null));
    const run = jest.fn(() => Promise.resolve(1));
    const subject = makeJob(fakeLock(), { run, nextDueAt, maxWaitMs: 60_000 });
    const t0 = Date.now();
    dues.push(t0 + 5000);
    subject.start();

    await jest.advanceTimersByTimeAsync(4999);
    expect(run).not.toHaveBeenCalled();
    dues.push(t0 + 5200); // due 200 ms after the run: waits the 1,000 ms interval
    await jest.advanceTimersByTimeAsync(1);
    expect(run).toHaveBeenCalledTimes(1);
    await jest.advanceTimersByTimeAsync(999);
    expect(run).toHaveBeenCalledTimes(1);
    await jest.advanceTimersByTimeAsync(1);
    expect(run).toHaveBeenCalledTimes(2);

    // Nothing due: one safety run after maxWaitMs, none in between.
    await jest.advanceTimersByTimeAsync(59_999);
    expect(run).toHaveBeenCalledTimes(2);
    await jest.advanceTimersByTimeAsync(1);
    expect(run).toHaveBeenCalledTimes(3);
  });

  it('runs when work this instance made falls due (wakeAt), the earliest wake winning', async () => {
    const run = jest.fn(() => Promise.resolve(1));
    const subject = makeJob(fakeLock(), {
      run,
      nextDueAt: () => Promise.resolve(null),
      maxWaitMs: 60_000,
    });
    subject.start();
    await jest.advanceTimersByTimeAsync(0);
    const now = Date.now();
    subject.wakeAt(now + 3000);
    subject.wakeAt(now + 2000);
    subject.wakeAt(now + 9000);
    await jest.advanceTimersByTimeAsync(1999);
    expect(run).not.toHaveBeenCalled();
    await jest.advanceTimersByTimeAsync(1);
    expect(run).toHaveBeenCalledTimes(1);
    await jest.advanceTimersByTimeAsync(20_000);
    expect(run).toHaveBeenCalledTimes(1);
  });

  it('leaves the planning to the instance that holds the lease', async () => {
    const nextDueAt = jest.fn(() => Promise.resolve(Date.now()));
    const subject = makeJob(fakeLock(true), {
      run: () => Promise.resolve(1),
      nextDueAt,
      maxWaitMs: 10_000,
    });
    subject.start();
    await jest.advanceTimersByTimeAsync(1000);
    const asked = nextDueAt.mock.calls.length;
    expect(await subject.runNow()).toBeNull();
    await jest.advanceTimersByTimeAsync(5000);
    expect(nextDueAt).toHaveBeenCalledTimes(asked);
  });

  it('logs a failure with the job name and runs again on the next tick', async () => {
    const error = new Error('database away');
    const run = jest.fn().mockRejectedValueOnce(error).mockResolvedValue(2);
    const subject = makeJob(fakeLock(), { run });
    subject.start();

    await jest.advanceTimersByTimeAsync(1000);
    expect(logger.error).toHaveBeenCalledWith(
      { err: error, job: 'Test job' },
      'Test job failed; retrying',
    );
    await jest.advanceTimersByTimeAsync(1000);
    expect(run).toHaveBeenCalledTimes(2);
    expect(await subject.runNow()).toBe(2);
    expect(logger.error).toHaveBeenCalledTimes(1);
  });

  it('stops ticking once stopped, and can start again', async () => {
    const run = jest.fn(() => Promise.resolve(1));
    const subject = makeJob(fakeLock(), { run });
    subject.start();
    await jest.advanceTimersByTimeAsync(1000);
    subject.stop();
    await jest.advanceTimersByTimeAsync(5000);
    expect(run).toHaveBeenCalledTimes(1);

    subject.start();
    await jest.advanceTimersByTimeAsync(1000);
    expect(run).toHaveBeenCalledTimes(2);
  });

  it('does local work before the lease', async () => {
    const lock = fakeLock();
    const order: string[] = [];
    const local = jest.fn(() => {
      order.push('local');
      return Promise.resolve();
    });
    lock.usingOrAlone.mockImplementation((...[, , work]: Parameters<UsingOrAlone>) => {
      order.push('lease');
      return work();
    });
    const subject = makeJob(lock, { run: () => Promise.resolve(1), local });

    expect(await subject.runNow()).toBe(1);
    expect(order).toEqual(['local', 'lease']);
  });
});
