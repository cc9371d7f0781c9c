import { type ChildProcess, fork } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { resolve } from 'node:path';
import { DataSource } from 'typeorm';
import { LockProvider } from '@app/lock';
import { seatLockKey } from '../apps/api/src/modules/booking/hold.service';
import { createEvent } from './support/fixtures';
import { RedisServer } from './support/redis-server';
import { TestApp } from './support/test-app';
import { testDatabaseUrl } from './support/test-env';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The fenced write both holders use: the row count decides, the fence alone guards it here. */
const FENCED_WRITE = `
  UPDATE seats SET status = 'held', booking_id = $3, held_until = now() + interval '1 minute', fence = $4
  WHERE event_id = $1 AND label = $2 AND fence < $4`;

type ChildMessage =
  | { type: 'holding'; fence: string }
  | { type: 'wrote'; rows: number; held: boolean; aborted: boolean };

function nextMessage(child: ChildProcess): Promise<ChildMessage> {
  return new Promise((resolveMessage, reject) => {
    child.once('message', (message) => resolveMessage(message as ChildMessage));
    child.once('exit', (code) => reject(new Error(`child exited early (${code})`)));
  });
}

describe('the stale writer, end to end (a holder frozen past its TTL in another process)', () => {
  let redis: RedisServer;
  let api: TestApp;
  let lock: LockProvider;

  beforeAll(async () => {
    redis = await RedisServer.start();
    api = await TestApp.start({ REDIS_URL: redis.url });
    lock = new LockProvider({ mode: 'redis', redisUrl: redis.url });
    for (let i = 0; i < 100 && !lock.isAvailable(); i += 1) await sleep(20);
  });

  afterAll(async () => {
    await lock.close();
    await api.close();
    await redis.stop();
  });

  it('PostgreSQL refuses the resumed holder by its fence; exactly one write is visible', async () => {
    const eventId = await createEvent(api);
    const key = seatLockKey(eventId, 'A1');
    const ttl = 400;
    const staleBooking = randomUUID();
    const child = fork(
      resolve(__dirname, 'support/stale-holder.child.ts'),
      [redis.url, testDatabaseUrl(), key, String(ttl), FENCED_WRITE, eventId, 'A1', staleBooking],
      { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: ['--import', 'tsx'] },
    );
    try {
      const holding = await nextMessage(child);
      expect(holding.type).toBe('holding');
      const staleFence = BigInt((holding as { fence: string }).fence);

      child.kill('SIGSTOP'); // no renewals, no writes: a GC pause, a stalled VM
      let lease = await lock.tryAcquire(key, 5_000);
      for (let i = 0; i < 100 && !lease; i += 1) {
        await sleep(20);
        lease = await lock.tryAcquire(key, 5_000);
      }
      expect(lease).not.toBeNull();
      expect(lease!.fence).toBeGreaterThan(staleFence);

      const db = api.app.get(DataSource);
      const freshBooking = randomUUID();
      const [, written] = await db.query(FENCED_WRITE, [
        eventId,
        'A1',
        freshBooking,
        lease!.fence.toString(),
      ]);
      expect(written).toBe(1);

      child.kill('SIGCONT');
      const wrote = nextMessage(child);
      child.send('write now');
      expect(await wrote).toEqual({ type: 'wrote', rows: 0, held: false, aborted: true });

      const [seat] = await db.query(
        `SELECT status, booking_id, fence FROM seats WHERE event_id = $1 AND label = 'A1'`,
        [eventId],
      );
      expect(seat).toEqual({
        status: 'held',
        booking_id: freshBooking,
        fence: lease!.fence.toString(),
      });
      await lock.release(lease!);
    } finally {
      child.kill('SIGCONT');
      if (child.exitCode === null) {
        await new Promise<void>((done) => {
          const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
          child.once('exit', () => {
            clearTimeout(timer);
            done();
          });
        });
      }
    }
  });
});
