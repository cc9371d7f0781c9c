import { Redis } from 'ioredis';
import { READINESS_MAX_AGE_MS } from '../apps/api/src/health/health.controller';
import { HoldSweeperService } from '../apps/api/src/modules/booking/hold-sweeper.service';
import { createEvent, registerCustomer } from './support/fixtures';
import { RedisServer } from './support/redis-server';
import { TcpProxy } from './support/tcp-proxy';
import { TestApp } from './support/test-app';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('network cut between the API and Redis (Redis keeps its keys)', () => {
  let redis: RedisServer;
  let proxy: TcpProxy;
  let api: TestApp;

  beforeAll(async () => {
    redis = await RedisServer.start();
    proxy = await TcpProxy.start(redis.port);
    api = await TestApp.start({ REDIS_URL: proxy.url, SWEEP_INTERVAL_MS: '3600000' });
  });

  afterAll(async () => {
    await api.close();
    await proxy.stop();
    await redis.stop();
  });

  async function redisReady(): Promise<void> {
    // /health/ready answers from a check up to a second old: one from before the cut says ok.
    await sleep(READINESS_MAX_AGE_MS);
    for (let i = 0; i < 100; i += 1) {
      if ((await api.get('/health/ready')).body.status === 'ok') return;
      await sleep(50);
    }
    throw new Error('the API did not reconnect to Redis');
  }

  it('a release Redis missed is retried, so the freed seat does not stay blocked until the TTL', async () => {
    const eventId = await createEvent(api);
    const alice = await registerCustomer(api);
    const bob = await registerCustomer(api);
    await redisReady();
    const hold = await api.post('/bookings', { eventId, seatIds: ['A1'] }, { token: alice.token });
    expect(hold.status).toBe(201);

    proxy.cut();
    const released = await api.delete(`/bookings/${hold.body.id}`, { token: alice.token });
    expect(released.status).toBe(200);
    expect(released.body.status).toBe('released');

    proxy.heal();
    await redisReady();
    // Redis still has Alice's key: without the retry, Bob would get 409 for a free seat for 5 minutes.
    const blocked = await api.post('/bookings', { eventId, seatIds: ['A1'] }, { token: bob.token });
    expect(blocked.status).toBe(409);

    await api.app.get(HoldSweeperService).sweep();
    const held = await api.post('/bookings', { eventId, seatIds: ['A1'] }, { token: bob.token });
    expect(held.status).toBe(201);
  });

  it('holds made during the cut are decided by PostgreSQL alone and stay exclusive after it heals', async () => {
    const eventId = await createEvent(api);
    const alice = await registerCustomer(api);
    const bob = await registerCustomer(api);
    await redisReady();

    proxy.cut();
    const during = await api.post(
      '/bookings',
      { eventId, seatIds: ['B1'] },
      { token: alice.token },
    );
    expect(during.status).toBe(201);
    proxy.heal();
    await redisReady();

    // Redis never saw Alice's hold; PostgreSQL's conditional write still refuses Bob.
    const after = await api.post('/bookings', { eventId, seatIds: ['B1'] }, { token: bob.token });
    expect(after.status).toBe(409);
    expect(after.body.conflictingSeats).toEqual(['B1']);
  });
});

describe('a frozen Redis (SIGSTOP) that wakes up and runs a timed-out acquire', () => {
  let redis: RedisServer;
  let api: TestApp;

  beforeAll(async () => {
    redis = await RedisServer.start();
    api = await TestApp.start({
      REDIS_URL: redis.url,
      REDIS_COMMAND_TIMEOUT_MS: '200',
      SWEEP_INTERVAL_MS: '3600000',
    });
  });

  afterAll(async () => {
    redis.resume();
    await api.close();
    await redis.stop();
  });

  it('leaves no orphaned seat lock behind once the sweeper has run', async () => {
    const eventId = await createEvent(api);
    const [alice, bob, carol] = [
      await registerCustomer(api),
      await registerCustomer(api),
      await registerCustomer(api),
    ];
    const hold = await api.post('/bookings', { eventId, seatIds: ['B5'] }, { token: alice.token });
    expect(hold.status).toBe(201);
    await redis.flushAll(); // Redis forgets Alice's lock; PostgreSQL still has her hold.

    redis.pause();
    const lost = await api.post('/bookings', { eventId, seatIds: ['B5'] }, { token: bob.token });
    expect(lost.status).toBe(409); // decided by PostgreSQL after the Redis call timed out
    redis.resume();

    // Bob's acquire script ran late: Redis now holds B5 for a booking that never existed.
    const client = new Redis(redis.url);
    try {
      for (let i = 0; i < 50 && !(await client.exists(`lock:seat:{event:${eventId}}:B5`)); i += 1) {
        await sleep(20);
      }
      const owner = await client.get(`lock:seat:{event:${eventId}}:B5`);
      expect(owner).not.toBeNull();
      expect(owner).not.toBe(hold.body.id);
    } finally {
      client.disconnect();
    }

    expect((await api.delete(`/bookings/${hold.body.id}`, { token: alice.token })).status).toBe(
      200,
    );
    await api.app.get(HoldSweeperService).sweep();
    const next = await api.post('/bookings', { eventId, seatIds: ['B5'] }, { token: carol.token });
    expect(next.status).toBe(201);
  });
});
