import { Redis } from 'ioredis';
import { LockBusyError, LockLostError, LockProvider, LockUnavailableError } from '@app/lock';
import { RedisServer } from './support/redis-server';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function connected(provider: LockProvider): Promise<void> {
  for (let i = 0; i < 100 && !provider.isAvailable(); i += 1) await sleep(20);
  expect(provider.isAvailable()).toBe(true);
}

describe('LockProvider against a real redis-server', () => {
  let server: RedisServer;
  let lock: LockProvider;

  beforeAll(async () => {
    server = await RedisServer.start();
    lock = new LockProvider({ mode: 'redis', redisUrl: server.url });
    await connected(lock);
  });

  afterAll(async () => {
    await lock.close();
    await server.stop();
  });

  it('acquireMany is all-or-nothing and names exactly the busy keys', async () => {
    const first = await lock.acquireMany(['{e1}:A1', '{e1}:A2', '{e1}:A3'], 10_000);
    const attempt = lock.acquireMany(['{e1}:A3', '{e1}:A4'], 10_000);
    await expect(attempt).rejects.toBeInstanceOf(LockBusyError);
    await expect(attempt).rejects.toMatchObject({ busyKeys: ['{e1}:A3'] });
    // A4 was not taken by the failed attempt: someone else can have it.
    const other = await lock.acquireMany(['{e1}:A4'], 10_000);
    expect(other.fence).toBeGreaterThan(0n);
    await lock.release(first);
    await lock.release(other);
  });

  it('usingOrAlone: runs under the lease, answers onBusy while another holds the key, runs alone without Redis', async () => {
    const ran: string[] = [];
    const job = async (signal?: AbortSignal) => {
      ran.push(signal ? 'leased' : 'alone');
      return 'done';
    };
    expect(await lock.usingOrAlone('{job}:sweep', { ttlMs: 5_000 }, job, () => 'busy')).toBe(
      'done',
    );
    const held = await lock.acquireMany(['{job}:sweep'], 5_000);
    expect(await lock.usingOrAlone('{job}:sweep', { ttlMs: 5_000 }, job, () => 'busy')).toBe(
      'busy',
    );
    await lock.release(held);

    const unreachable = new LockProvider({ mode: 'redis', redisUrl: 'redis://127.0.0.1:9' });
    const off = new LockProvider({ mode: 'off' });
    try {
      expect(await unreachable.usingOrAlone('{job}:x', { ttlMs: 1_000 }, job, () => 'busy')).toBe(
        'done',
      );
      expect(await off.usingOrAlone('{job}:x', { ttlMs: 1_000 }, job, () => 'busy')).toBe('done');
    } finally {
      await unreachable.close();
      await off.close();
    }
    expect(ran).toEqual(['leased', 'alone', 'alone']);
  });

  it('mints strictly increasing fencing tokens per key', async () => {
    const tokens: bigint[] = [];
    for (let i = 0; i < 20; i += 1) {
      const lease = await lock.acquireMany(['{e2}:B1'], 10_000);
      tokens.push(lease.fence);
      await lock.release(lease);
    }
    for (let i = 1; i < tokens.length; i += 1) expect(tokens[i]).toBeGreaterThan(tokens[i - 1]);
  });

  it('one token covers several keys and beats every earlier token of each', async () => {
    const a = await lock.acquireMany(['{e3}:C1'], 10_000);
    await lock.release(a);
    const b = await lock.acquireMany(['{e3}:C2'], 10_000);
    await lock.release(b);
    const both = await lock.acquireMany(['{e3}:C1', '{e3}:C2'], 10_000);
    expect(both.fence).toBeGreaterThan(a.fence);
    expect(both.fence).toBeGreaterThan(b.fence);
    await lock.release(both);
  });

  it('release is token-checked and safe to repeat', async () => {
    const lease = await lock.acquireMany(['{e4}:D1'], 10_000);
    expect(await lock.release({ keys: lease.keys, owner: 'somebody-else' })).toBe(0);
    await expect(lock.acquireMany(['{e4}:D1'], 10_000)).rejects.toBeInstanceOf(LockBusyError);
    expect(await lock.release(lease)).toBe(1);
    expect(await lock.release(lease)).toBe(0);
    const next = await lock.acquireMany(['{e4}:D1'], 10_000);
    await lock.release(next);
  });

  it('keys expire after their TTL, and extend never revives an expired lease', async () => {
    const lease = await lock.acquireMany(['{e5}:E1'], 150);
    const extended = await lock.extend(lease, 300);
    expect(extended.ttlMs).toBe(300);
    await sleep(400);
    await expect(lock.extend(lease)).rejects.toBeInstanceOf(LockLostError);
    const next = await lock.acquireMany(['{e5}:E1'], 10_000);
    expect(next.fence).toBeGreaterThan(lease.fence);
    await expect(lock.extend(lease)).rejects.toBeInstanceOf(LockLostError);
    await lock.release(next);
  });

  it('tryAcquire answers null while another instance holds the job', async () => {
    const held = await lock.tryAcquire('job:test', 10_000);
    expect(held).not.toBeNull();
    expect(await lock.tryAcquire('job:test', 10_000)).toBeNull();
    await lock.release(held!);
    const again = await lock.tryAcquire('job:test', 10_000);
    expect(again).not.toBeNull();
    await lock.release(again!);
  });

  it('tokens keep increasing after FLUSHALL and after a restart that lost every key', async () => {
    const before = await lock.acquireMany(['{e6}:F1'], 10_000);
    await server.flushAll();
    const afterFlush = await lock.acquireMany(['{e6}:F1'], 10_000);
    expect(afterFlush.fence).toBeGreaterThan(before.fence);

    await server.kill();
    await server.restart();
    await connected(lock);
    const afterRestart = await lock.acquireMany(['{e6}:F1'], 10_000);
    expect(afterRestart.fence).toBeGreaterThan(afterFlush.fence);
    await lock.release(afterRestart);
  });

  it('ratchet raises the counter so the next token beats a value PostgreSQL held', async () => {
    const lease = await lock.acquireMany(['{e7}:G1'], 10_000);
    await lock.release(lease);
    const ahead = lease.fence + 10_000_000_000n;
    await lock.ratchet(['{e7}:G1'], ahead);
    const next = await lock.acquireMany(['{e7}:G1'], 10_000);
    expect(next.fence).toBeGreaterThan(ahead);
    await lock.release(next);
  });

  it('every key of one call shares a cluster slot (hash tag) with its fence counter', async () => {
    const client = new Redis(server.url);
    try {
      const lease = await lock.acquireMany(['seat:{event:x}:A1', 'plain-key'], 10_000);
      const keys = (await client.keys('*')).filter(
        (k) => k.includes('event:x') || k.includes('plain-key'),
      );
      expect(keys.sort()).toEqual(
        [
          'fence:seat:{event:x}:A1',
          'fence:{plain-key}',
          'lock:seat:{event:x}:A1',
          'lock:{plain-key}',
        ].sort(),
      );
      await lock.release(lease);
    } finally {
      client.disconnect();
    }
  });

  it('fails fast with LockUnavailableError while Redis is down, and recovers when it is back', async () => {
    await server.kill();
    const started = Date.now();
    await expect(lock.acquireMany(['{e8}:H1'], 10_000)).rejects.toBeInstanceOf(
      LockUnavailableError,
    );
    expect(Date.now() - started).toBeLessThan(1000);
    expect(lock.isAvailable()).toBe(false);
    await server.restart();
    await connected(lock);
    const lease = await lock.acquireMany(['{e8}:H1'], 10_000);
    await lock.release(lease);
  });

  it('a frozen Redis times out as unavailable, and the next answer makes it available again', async () => {
    const changes: boolean[] = [];
    const frozen = new LockProvider({
      mode: 'redis',
      redisUrl: server.url,
      commandTimeoutMs: 200,
      onAvailabilityChange: (available) => changes.push(available),
    });
    try {
      await connected(frozen);
      server.pause();
      const started = Date.now();
      const attempt = frozen.acquireMany(['{e9}:J1'], 10_000);
      await expect(attempt).rejects.toMatchObject({
        name: 'LockUnavailableError',
        reason: 'timeout',
      });
      expect(Date.now() - started).toBeLessThan(1000);
      expect(frozen.isAvailable()).toBe(false);

      server.resume();
      // The connection never dropped: recovery comes from the next successful command.
      for (let i = 0; i < 50 && !frozen.isAvailable(); i += 1) {
        await frozen.ping().catch(() => undefined);
        await sleep(20);
      }
      expect(frozen.isAvailable()).toBe(true);
      expect(changes).toEqual([true, false, true]);
    } finally {
      server.resume();
      await frozen.close();
    }
    // Closing the provider is not reported as an outage.
    expect(changes).toEqual([true, false, true]);
  });

  it('in mode off it never talks to Redis', async () => {
    const off = new LockProvider({ mode: 'off' });
    expect(off.isAvailable()).toBe(false);
    await expect(off.acquireMany(['k'], 1000)).rejects.toBeInstanceOf(LockUnavailableError);
    await off.close();
  });
});
