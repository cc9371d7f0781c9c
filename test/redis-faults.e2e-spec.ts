import { DataSource } from 'typeorm';
import {
  countStatuses,
  createEvent,
  registerCustomer,
  registerCustomers,
} from './support/fixtures';
import { freePort, RedisServer } from './support/redis-server';
import { TestApp } from './support/test-app';

function metric(text: string, name: string): number {
  const line = text.split('\n').find((l) => l.startsWith(name));
  return line ? Number(line.split(' ').pop()) : 0;
}

async function raceForOneSeat(api: TestApp, contenders: number) {
  const eventId = await createEvent(api);
  const customers = await registerCustomers(api, contenders);
  const responses = await Promise.all(
    customers.map((c) => api.post('/bookings', { eventId, seatIds: ['A1'] }, { token: c.token })),
  );
  const db = api.app.get(DataSource);
  const seats = await db.query(
    `SELECT label, status FROM seats WHERE event_id = $1 AND status <> 'free'`,
    [eventId],
  );
  const [{ bookings }] = await db.query(
    `SELECT count(*)::int AS bookings FROM bookings WHERE event_id = $1`,
    [eventId],
  );
  return { eventId, statuses: countStatuses(responses.map((r) => r.status)), seats, bookings };
}

describe('Redis faults: slower, never wrong', () => {
  let redis: RedisServer;
  let api: TestApp;

  beforeAll(async () => {
    redis = await RedisServer.start();
    api = await TestApp.start({ REDIS_URL: redis.url });
  });

  afterAll(async () => {
    await api.close();
    await redis.stop();
  });

  it('Redis killed: 300 racing holds still give exactly one winner, decided by PostgreSQL alone', async () => {
    const healthy = await api.get('/health/ready');
    expect(healthy.body.details.redis.status).toBe('up');

    await redis.kill();
    const race = await raceForOneSeat(api, 300);
    expect(race.statuses).toEqual({ 201: 1, 409: 299 });
    expect(race.seats).toEqual([{ label: 'A1', status: 'held' }]);
    expect(race.bookings).toBe(1);

    const metrics = (await api.get('/metrics')).body as string;
    expect(
      metric(metrics, 'seatlock_hold_fallbacks_total{reason="redis_unreachable"}'),
    ).toBeGreaterThanOrEqual(300);

    const ready = await api.get('/health/ready');
    expect(ready.status).toBe(200);
    expect(ready.body.status).toBe('degraded');
    expect(ready.body.details.database.status).toBe('up');
    expect(ready.body.details.redis.status).toBe('degraded');
  });

  it('Redis back (restarted empty): the lock provider keeps contenders away again', async () => {
    await redis.restart();
    for (let i = 0; i < 100 && (await api.get('/health/ready')).body.status !== 'ok'; i += 1) {
      await new Promise((r) => setTimeout(r, 50));
    }
    const before = metric(
      (await api.get('/metrics')).body,
      'seatlock_holds_total{outcome="conflict_redis"}',
    );
    const race = await raceForOneSeat(api, 100);
    expect(race.statuses).toEqual({ 201: 1, 409: 99 });
    const after = metric(
      (await api.get('/metrics')).body,
      'seatlock_holds_total{outcome="conflict_redis"}',
    );
    expect(after - before).toBe(99);
  });

  it('Redis flushed between two holds of the same seat: the second fencing token is still larger', async () => {
    const eventId = await createEvent(api);
    const alice = await registerCustomer(api);
    const first = await api.post('/bookings', { eventId, seatIds: ['B1'] }, { token: alice.token });
    expect(first.status).toBe(201);
    expect((await api.delete(`/bookings/${first.body.id}`, { token: alice.token })).status).toBe(
      200,
    );

    await redis.flushAll();
    const second = await api.post(
      '/bookings',
      { eventId, seatIds: ['B1'] },
      { token: alice.token },
    );
    expect(second.status).toBe(201);
    expect(BigInt(second.body.fencingToken)).toBeGreaterThan(BigInt(first.body.fencingToken));
  });

  it('PostgreSQL holding a newer fence than Redis mints: the hold still succeeds and Redis is ratcheted', async () => {
    const eventId = await createEvent(api);
    const alice = await registerCustomer(api);
    const db = api.app.get(DataSource);
    // As if Redis lost its counters and its clock is behind PostgreSQL's (failover to a lagging node).
    const ahead = BigInt(Date.now()) * 1000n + 3_600_000_000n;
    await db.query(`UPDATE seats SET fence = $2 WHERE event_id = $1 AND label = 'B2'`, [
      eventId,
      ahead.toString(),
    ]);
    const rejectionsBefore = metric(
      (await api.get('/metrics')).body,
      'seatlock_fence_rejections_total',
    );

    const hold = await api.post('/bookings', { eventId, seatIds: ['B2'] }, { token: alice.token });
    expect(hold.status).toBe(201);
    expect(BigInt(hold.body.fencingToken)).toBeGreaterThan(ahead);
    expect(metric((await api.get('/metrics')).body, 'seatlock_fence_rejections_total')).toBe(
      rejectionsBefore + 1,
    );

    // The next Redis-minted token beats PostgreSQL's without another rejection.
    await api.delete(`/bookings/${hold.body.id}`, { token: alice.token });
    const again = await api.post('/bookings', { eventId, seatIds: ['B2'] }, { token: alice.token });
    expect(again.status).toBe(201);
    expect(BigInt(again.body.fencingToken)).toBeGreaterThan(BigInt(hold.body.fencingToken));
    expect(metric((await api.get('/metrics')).body, 'seatlock_fence_rejections_total')).toBe(
      rejectionsBefore + 1,
    );
  });
});

describe('REDIS_URL pointing at a closed port from the start', () => {
  let api: TestApp;

  beforeAll(async () => {
    api = await TestApp.start({ REDIS_URL: `redis://127.0.0.1:${await freePort()}` });
  });

  afterAll(async () => {
    await api.close();
  });

  it('serves holds correctly and reports Redis degraded', async () => {
    const race = await raceForOneSeat(api, 300);
    expect(race.statuses).toEqual({ 201: 1, 409: 299 });
    expect(race.seats).toEqual([{ label: 'A1', status: 'held' }]);
    expect(race.bookings).toBe(1);
    const ready = await api.get('/health/ready');
    expect(ready.status).toBe(200);
    expect(ready.body.details.redis.status).toBe('degraded');
  });
});

describe('LOCK_MODE=redlock over 3 redis-server nodes', () => {
  let nodes: RedisServer[];
  let api: TestApp;

  beforeAll(async () => {
    nodes = await Promise.all([RedisServer.start(), RedisServer.start(), RedisServer.start()]);
    api = await TestApp.start({
      LOCK_MODE: 'redlock',
      REDIS_URLS: nodes.map((n) => n.url).join(','),
    });
    for (let i = 0; i < 100 && (await api.get('/health/ready')).body.status !== 'ok'; i += 1) {
      await new Promise((r) => setTimeout(r, 20));
    }
  });

  afterAll(async () => {
    await api.close();
    await Promise.all(nodes.map((n) => n.stop()));
  });

  it('300 racing holds: one winner, the losers turned away by the quorum; one node down changes nothing', async () => {
    const before = metric(
      (await api.get('/metrics')).body,
      'seatlock_holds_total{outcome="conflict_redis"}',
    );
    const race = await raceForOneSeat(api, 300);
    expect(race.statuses).toEqual({ 201: 1, 409: 299 });
    expect(race.bookings).toBe(1);
    const after = metric(
      (await api.get('/metrics')).body,
      'seatlock_holds_total{outcome="conflict_redis"}',
    );
    expect(after - before).toBe(299);

    await nodes[0].kill();
    const degraded = await raceForOneSeat(api, 100);
    expect(degraded.statuses).toEqual({ 201: 1, 409: 99 });
    const ready = await api.get('/health/ready');
    expect(ready.body.details.redis.status).toBe('up');
    const final = metric(
      (await api.get('/metrics')).body,
      'seatlock_holds_total{outcome="conflict_redis"}',
    );
    expect(final - after).toBe(99);
  });
});
