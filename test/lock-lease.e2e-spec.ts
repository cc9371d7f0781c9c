import { performance } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import {
  type Lease,
  type LeaseContext,
  LockBusyError,
  LockLostError,
  LockProvider,
} from '@app/lock';
import { RedisServer } from './support/redis-server';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function connected(provider: LockProvider): Promise<void> {
  for (let i = 0; i < 100 && !provider.isAvailable(); i += 1) await sleep(20);
  expect(provider.isAvailable()).toBe(true);
}

/** Resolves with the time the signal fired (performance.now()), or null after `timeoutMs`. */
function whenAborted(signal: AbortSignal, timeoutMs: number): Promise<number | null> {
  if (signal.aborted) return Promise.resolve(performance.now());
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(null), timeoutMs);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve(performance.now());
    });
  });
}

describe('leases in use: renewal and a loss signal that never lies', () => {
  let server: RedisServer;
  let lock: LockProvider;
  let redis: Redis;
  const TTL = 300;

  beforeAll(async () => {
    server = await RedisServer.start();
    lock = new LockProvider({ mode: 'redis', redisUrl: server.url, commandTimeoutMs: 200 });
    redis = new Redis(server.url);
    await connected(lock);
  });

  afterAll(async () => {
    redis.disconnect();
    await lock.close();
    await server.stop();
  });

  it('using() keeps the lease alive over 5× its TTL, then releases it', async () => {
    const result = await lock.using('{u1}:k', { ttlMs: TTL }, async ({ signal, assertHeld }) => {
      for (let elapsed = 0; elapsed < 5 * TTL; elapsed += 100) {
        await sleep(100);
        expect(await lock.tryAcquire('{u1}:k', TTL)).toBeNull();
      }
      assertHeld();
      return signal.aborted;
    });
    expect(result).toBe(false);
    expect(await redis.exists('lock:{u1}:k')).toBe(0);
  });

  it.each([
    ['the key is deleted', (key: string) => redis.del(`lock:${key}`)],
    ['Redis is flushed', () => redis.flushall()],
    [
      'another owner takes the key',
      async (key: string) => {
        await redis.del(`lock:${key}`);
        await redis.set(`lock:${key}`, 'someone-else', 'PX', 10_000);
      },
    ],
  ])('the signal fires within ttl/3 + one round trip when %s', async (_what, fault) => {
    const key = `{u2-${Math.random()}}:k`;
    let firedAfter: number | null = null;
    let context: LeaseContext | undefined;
    await lock.using(key, { ttlMs: TTL }, async (ctx) => {
      context = ctx;
      await sleep(50);
      const faultAt = performance.now();
      await fault(key);
      const fired = await whenAborted(ctx.signal, 2 * TTL);
      firedAfter = fired === null ? null : fired - faultAt;
    });
    expect(firedAfter).not.toBeNull();
    expect(firedAfter!).toBeLessThanOrEqual(TTL / 3 + 50);
    expect(context!.signal.reason).toBeInstanceOf(LockLostError);
    // Lost stays lost.
    expect(() => context!.assertHeld()).toThrow(LockLostError);
    expect(context!.signal.aborted).toBe(true);
  });

  it('Redis frozen (SIGSTOP): the signal fires by the validity deadline, nothing hangs, nothing is orphaned', async () => {
    const ttl = 600;
    const key = '{u3}:k';
    let lateBy = Number.NaN;
    let workEnded = 0;
    const started = performance.now();
    try {
      await lock.using(key, { ttlMs: ttl }, async (ctx) => {
        server.pause();
        const fired = await whenAborted(ctx.signal, 3 * ttl);
        expect(fired).not.toBeNull();
        lateBy = fired! - ctx.lease.validUntil;
        expect(() => ctx.assertHeld()).toThrow(LockLostError);
        workEnded = performance.now();
      });
      // The release after a loss runs in the background: using() did not wait for the frozen server.
      expect(performance.now() - workEnded).toBeLessThan(100);
      // At the deadline (timers may fire a fraction of a millisecond early, never meaningfully late).
      expect(Math.abs(lateBy)).toBeLessThan(20);
      expect(performance.now() - started).toBeLessThan(ttl + 300);
    } finally {
      server.resume();
    }

    // Whatever ran late (a renewal, the release) the key is gone within one TTL of waking.
    let exists = 1;
    for (let i = 0; i < 40 && exists; i += 1) {
      exists = await redis.exists(`lock:${key}`);
      if (exists) await sleep(50);
    }
    expect(exists).toBe(0);
    await connected(lock);
  });

  it('acquire() waits with backoff while busy, gives up after waitMs, and honours an abort', async () => {
    const held = await lock.acquireMany(['{u4}:k'], 250);
    const started = performance.now();
    const waited = await lock.acquire('{u4}:k', { ttlMs: 1000, waitMs: 1000 });
    expect(performance.now() - started).toBeGreaterThanOrEqual(200);
    expect(waited.fence).toBeGreaterThan(held.fence);

    const tooShort = performance.now();
    await expect(lock.acquire('{u4}:k', { ttlMs: 1000, waitMs: 150 })).rejects.toBeInstanceOf(
      LockBusyError,
    );
    expect(performance.now() - tooShort).toBeLessThan(400);

    const controller = new AbortController();
    setTimeout(() => controller.abort(new Error('caller gave up')), 50);
    await expect(
      lock.acquire('{u4}:k', { ttlMs: 1000, waitMs: 5000, signal: controller.signal }),
    ).rejects.toThrow('caller gave up');
    await lock.release(waited);
  });

  it('extend refuses a lease past its validity deadline even if Redis still has the key', async () => {
    const lease = await lock.acquireMany(['{u5}:k'], 10_000);
    const expiredLocally = { ...lease, validUntil: performance.now() - 1 };
    await expect(lock.extend(expiredLocally)).rejects.toBeInstanceOf(LockLostError);
    await lock.release(lease);
  });

  it('100 concurrent contenders on one key: exactly one winner, 1,000 times over', async () => {
    // The default command timeout: the 200 ms above, meant for detecting a lost Redis quickly,
    // can expire for a burst of 100 on a loaded CI machine (the winner then reads as unavailable).
    const contended = new LockProvider({ mode: 'redis', redisUrl: server.url });
    await connected(contended);
    try {
      let rounds = 0;
      for (let round = 0; round < 1000; round += 1) {
        const key = `{u6}:round-${round}`;
        const results = await Promise.allSettled(
          Array.from({ length: 100 }, () => contended.acquireMany([key], 5_000)),
        );
        const winners = results.filter((r) => r.status === 'fulfilled');
        const losers = results.filter(
          (r) => r.status === 'rejected' && r.reason instanceof LockBusyError,
        );
        expect([winners.length, losers.length]).toEqual([1, 99]);
        await contended.release((winners[0] as PromiseFulfilledResult<Lease>).value);
        rounds += 1;
      }
      expect(rounds).toBe(1000);
    } finally {
      await contended.close();
    }
  });
});
