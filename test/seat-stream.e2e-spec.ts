import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { createEvent, type Customer, registerCustomers } from './support/fixtures';
import { PgCountingProxy } from './support/pg-counting-proxy';
import { expectProblem } from './support/problem-assertions';
import { RedisServer } from './support/redis-server';
import { SseClient } from './support/sse-client';
import { TestApp } from './support/test-app';
import { testDatabaseUrl } from './support/test-env';

/**
 * GET /events/{id}/seats/stream (issue 14): a snapshot, then every committed change in seq order,
 * on every instance; resumable with Last-Event-ID; a snapshot wherever a gap could be. Real
 * PostgreSQL and Redis; each "equal" below compares what a client built from the stream with
 * GET /events/{id}/seats.
 */

const FAST = { STREAM_POLL_MS: '20', STREAM_PING_MS: '300' };

/** A1…A10, B1…B10, …: the n-th label of a rows × 10 section. */
const label = (n: number) => `${String.fromCharCode(65 + Math.floor(n / 10))}${(n % 10) + 1}`;

async function seatsOf(api: TestApp, eventId: string): Promise<Map<string, string>> {
  const response = await api.get(`/events/${eventId}/seats`);
  expect(response.status).toBe(200);
  return new Map(response.body.map((s: { label: string; status: string }) => [s.label, s.status]));
}

function hold(api: TestApp, who: Customer, eventId: string, seats: string[]) {
  return api.post('/bookings', { eventId, seatIds: seats }, { token: who.token });
}

/** Waits until the client's state equals GET /events/{id}/seats (the stream may lag a little). */
async function converges(client: SseClient, api: TestApp, eventId: string): Promise<void> {
  const expected = await seatsOf(api, eventId);
  await client.waitUntil(
    () => {
      const { seats } = client.state();
      return [...expected].every(([l, s]) => seats.get(l) === s) && seats.size === expected.size;
    },
    5000,
    'the stream to converge on GET /seats',
  );
}

describe('the live seat stream (real PostgreSQL and Redis)', () => {
  let a: TestApp;
  let b: TestApp;
  const clients: SseClient[] = [];
  const open = async (api: TestApp, path: string, headers: Record<string, string> = {}) => {
    const client = await SseClient.open(`${api.url}${path}`, headers);
    clients.push(client);
    return client;
  };

  beforeAll(async () => {
    // Two instances on one database and one Redis.
    a = await TestApp.start(FAST);
    b = await TestApp.start(FAST);
  });

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
  });

  afterAll(async () => {
    await Promise.all([a?.close(), b?.close()]);
  });

  it('starts with a snapshot equal to GET /seats and the sections, as text/event-stream, and pings', async () => {
    const eventId = await createEvent(a, [
      { name: 'Stalls', rows: 2, seatsPerRow: 10, priceCents: 2000 },
      { name: 'Floor', capacity: 50, priceCents: 1000 },
    ]);
    const [alice] = await registerCustomers(a, 1);
    expect((await hold(a, alice, eventId, ['A1', 'A2'])).status).toBe(201);

    const client = await open(a, `/events/${eventId}/seats/stream`);
    expect(client.status).toBe(200);
    expect(client.headers['content-type']).toContain('text/event-stream');
    const snapshot = await client.nth('snapshot', 1);
    expect(snapshot.id).toBe(String(snapshot.data.seq));
    expect(client.events[0].event).toBe('snapshot');
    expect(new Map(snapshot.data.seats.map((s: any) => [s.label, s.status]))).toEqual(
      await seatsOf(a, eventId),
    );
    expect(snapshot.data.sections).toEqual([
      { name: 'Stalls', available: 18 },
      { name: 'Floor', available: 50 },
    ]);
    await client.waitUntil(() => client.comments.includes('ping'), 2000, 'a ping');
  });

  it('bad requests are problems before the stream starts: unknown event 404, bad id or Last-Event-ID 400', async () => {
    const unknown = await open(a, '/events/00000000-0000-4000-8000-000000000000/seats/stream');
    expect(unknown.status).toBe(404);
    expect((await unknown.problem()).code).toBe('CATALOG.EVENT_NOT_FOUND');
    const notUuid = await a.get('/events/not-a-uuid/seats/stream');
    expectProblem(notUuid, 400, 'REQUEST.VALIDATION_FAILED');
    expect(notUuid.body.errors[0].field).toBe('eventId');
    const eventId = await createEvent(a);
    const badHeader = await a.get(`/events/${eventId}/seats/stream`, {
      headers: { 'last-event-id': 'yesterday' },
    });
    expectProblem(badHeader, 400, 'REQUEST.VALIDATION_FAILED');
    expect(badHeader.body.errors[0].field).toBe('Last-Event-ID');
    const badQuery = await a.get(`/events/${eventId}/seats/stream?lastEventId=-1`);
    expectProblem(badQuery, 400, 'REQUEST.VALIDATION_FAILED');
    expect(badQuery.body.errors[0].field).toBe('lastEventId');
  });

  it('two subscribers on two instances see the same ordered changes for holds made through either', async () => {
    const eventId = await createEvent(a, [
      { name: 'Stalls', rows: 4, seatsPerRow: 10, priceCents: 2000 },
    ]);
    const customers = await registerCustomers(a, 20);
    const onA = await open(a, `/events/${eventId}/seats/stream`);
    const onB = await open(b, `/events/${eventId}/seats/stream`);
    await Promise.all([onA.nth('snapshot', 1), onB.nth('snapshot', 1)]);

    // 20 concurrent holds, alternately through each instance, then 5 releases through the other.
    const held = await Promise.all(
      customers.map((who, i) => hold(i % 2 ? b : a, who, eventId, [label(i)])),
    );
    expect(held.every((r) => r.status === 201)).toBe(true);
    for (let i = 0; i < 5; i += 1) {
      const api = i % 2 ? a : b;
      const gone = await api.delete(`/bookings/${held[i].body.id}`, {
        token: customers[i].token,
      });
      expect(gone.status).toBe(200);
    }
    await converges(onA, a, eventId);
    await converges(onB, b, eventId);

    const messages = (client: SseClient) =>
      client.ofKind('seats').map((e) => ({ seq: e.data.seq, changes: e.data.changes }));
    expect(messages(onA)).toEqual(messages(onB));
    expect(messages(onA)).toHaveLength(25);
    expect(onA.state().gaps).toEqual([]);
    const seqs = messages(onA).map((m) => m.seq);
    expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
    // One message per transaction: a two-seat hold is one message with both seats.
    const pair = await hold(a, customers[19], eventId, ['D1', 'D2']);
    expect(pair.status).toBe(201);
    const last = await onB.nth('seats', 26);
    expect(last.data.changes).toEqual([
      { label: 'D1', status: 'held' },
      { label: 'D2', status: 'held' },
    ]);
    expect(last.data.sections).toEqual([{ name: 'Stalls', available: 40 - 15 - 2 }]);
  });

  it('a subscriber that drops during 100 changes resumes with Last-Event-ID (no snapshot) and ends equal to GET /seats', async () => {
    const eventId = await createEvent(a, [
      { name: 'Stalls', rows: 6, seatsPerRow: 10, priceCents: 2000 },
    ]);
    const customers = await registerCustomers(a, 50);
    const first = await open(a, `/events/${eventId}/seats/stream`);
    await first.nth('snapshot', 1);
    expect((await hold(b, customers[0], eventId, ['A1'])).status).toBe(201);
    const seen = await first.nth('seats', 1);
    await first.close();

    // 100 changes while it is away: 50 holds and 50 releases, through both instances.
    const bookings = await Promise.all(
      customers.map((who, i) => hold(i % 2 ? a : b, who, eventId, [label(i + 1)])),
    );
    expect(bookings.every((r) => r.status === 201)).toBe(true);
    await Promise.all(
      bookings.map((r, i) =>
        (i % 2 ? b : a).delete(`/bookings/${r.body.id}`, { token: customers[i].token }),
      ),
    );

    const resumed = await open(b, `/events/${eventId}/seats/stream`, {
      'last-event-id': seen.id as string,
    });
    await resumed.nth('seats', 100, 10_000);
    expect(resumed.ofKind('snapshot')).toEqual([]);
    expect(resumed.ofKind('seats')[0].data.seq).toBe(Number(seen.id) + 1);
    // Applied on top of what the first connection had.
    const state = new Map(first.state().seats);
    for (const e of resumed.ofKind('seats')) {
      for (const c of e.data.changes) state.set(c.label, c.status);
    }
    expect(state).toEqual(await seatsOf(a, eventId));
    expect(resumed.events.map((e) => e.data.seq)).toEqual(
      Array.from({ length: 100 }, (_, i) => Number(seen.id) + 1 + i),
    );

    // The same through ?lastEventId=, for clients that cannot set the header.
    const byQuery = await open(a, `/events/${eventId}/seats/stream?lastEventId=${seen.id}`);
    await byQuery.nth('seats', 100, 10_000);
    expect(byQuery.ofKind('snapshot')).toEqual([]);
  });

  it('a resume the history no longer covers (too old, or ahead of the stream) gets a snapshot', async () => {
    const short = await TestApp.start({ ...FAST, STREAM_HISTORY: '10' });
    try {
      const eventId = await createEvent(short, [
        { name: 'Stalls', rows: 3, seatsPerRow: 10, priceCents: 2000 },
      ]);
      const customers = await registerCustomers(short, 30);
      const watcher = await open(short, `/events/${eventId}/seats/stream`);
      await watcher.nth('snapshot', 1);
      for (const [i, who] of customers.entries()) {
        expect((await hold(short, who, eventId, [label(i)])).status).toBe(201);
      }
      await watcher.nth('seats', 30);

      const tooOld = await open(short, `/events/${eventId}/seats/stream`, { 'last-event-id': '1' });
      const snapshot = await tooOld.nth('snapshot', 1);
      expect(snapshot.data.seq).toBe(30);
      expect(tooOld.ofKind('seats')).toEqual([]);
      const ahead = await open(short, `/events/${eventId}/seats/stream?lastEventId=999`);
      expect((await ahead.nth('snapshot', 1)).data.seq).toBe(30);
      // A resume the history still covers is served from it.
      const recent = await open(short, `/events/${eventId}/seats/stream`, {
        'last-event-id': '25',
      });
      await recent.nth('seats', 5);
      expect(recent.ofKind('snapshot')).toEqual([]);
      await converges(tooOld, short, eventId);
    } finally {
      await Promise.all(clients.splice(0).map((c) => c.close()));
      await short.close();
    }
  });

  it('GA units move the section count, not the seat list', async () => {
    const eventId = await createEvent(a, [
      { name: 'Stalls', rows: 1, seatsPerRow: 4, priceCents: 2000 },
      { name: 'Floor', capacity: 10, priceCents: 1000 },
    ]);
    const [alice] = await registerCustomers(a, 1);
    const client = await open(b, `/events/${eventId}/seats/stream`);
    await client.nth('snapshot', 1);
    const units = await a.post(
      '/bookings',
      { eventId, section: 'Floor', quantity: 3 },
      { token: alice.token },
    );
    expect(units.status).toBe(201);
    const message = await client.nth('seats', 1);
    expect(message.data.changes).toEqual([]);
    expect(message.data.sections).toEqual([
      { name: 'Stalls', available: 4 },
      { name: 'Floor', available: 7 },
    ]);
  });

  it('keeps the section counts through 300 concurrent changes begun before anyone watched: they end equal to GET /events/{id}', async () => {
    const eventId = await createEvent(a, [
      { name: 'Stalls', rows: 10, seatsPerRow: 10, priceCents: 2000 },
      { name: 'Circle', rows: 5, seatsPerRow: 10, priceCents: 1500 },
      { name: 'Floor', capacity: 200, priceCents: 1000 },
    ]);
    const customers = await registerCustomers(a, 150);
    // Changes waiting before the event's first batch: its first count must not count them twice.
    const early = await Promise.all(
      customers.slice(0, 50).map((who, i) => hold(i % 2 ? b : a, who, eventId, [label(i)])),
    );
    expect(early.every((r) => r.status === 201)).toBe(true);
    const client = await open(b, `/events/${eventId}/seats/stream`);
    await client.nth('snapshot', 1);

    // 100 seated and GA holds at once through both instances, then 50 releases and 50 more holds.
    const wave = await Promise.all(
      customers
        .slice(50, 150)
        .map((who, i) =>
          i % 2
            ? a.post(
                '/bookings',
                { eventId, section: 'Floor', quantity: 1 + (i % 3) },
                { token: who.token },
              )
            : hold(b, who, eventId, [label(50 + i / 2)]),
        ),
    );
    expect(wave.every((r) => r.status === 201)).toBe(true);
    const released = await Promise.all(
      early.map((r, i) =>
        (i % 2 ? a : b).delete(`/bookings/${r.body.id}`, { token: customers[i].token }),
      ),
    );
    expect(released.every((r) => r.status === 200)).toBe(true);
    const again = await Promise.all(
      customers
        .slice(0, 50)
        .map((who) =>
          a.post('/bookings', { eventId, section: 'Circle', quantity: 1 }, { token: who.token }),
        ),
    );
    expect(again.every((r) => r.status === 201)).toBe(true);

    await converges(client, b, eventId);
    const event = await a.get(`/events/${eventId}`);
    const expected = new Map<string, number>(
      event.body.sections.map((x: { name: string; available: number }) => [x.name, x.available]),
    );
    expect(expected).toEqual(
      new Map([
        ['Stalls', 100 - 50],
        ['Circle', 50 - 50],
        ['Floor', 200 - (17 * 1 + 17 * 2 + 16 * 3)],
      ]),
    );
    await client.waitUntil(
      () => [...expected].every(([name, n]) => client.state().sections.get(name) === n),
      5000,
      "the stream's section counts to equal GET /events/{id}",
    );
    expect(client.state().gaps).toEqual([]);
  });

  it('STREAM_MAX_SUBSCRIBERS: past it 503 with Retry-After; a closed stream frees its slot', async () => {
    const capped = await TestApp.start({ ...FAST, STREAM_MAX_SUBSCRIBERS: '2' });
    try {
      const eventId = await createEvent(capped);
      const path = `/events/${eventId}/seats/stream`;
      const one = await open(capped, path);
      await open(capped, path);
      const third = await open(capped, path);
      expect(third.status).toBe(503);
      expect(third.headers['retry-after']).toBe('5');
      expect((await third.problem()).code).toBe('STREAM.TOO_MANY_SUBSCRIBERS');
      await one.close();
      const metrics = async () =>
        (await capped.get('/metrics')).body.match(/^seatlock_stream_subscribers (\d+)/m)?.[1];
      for (let i = 0; i < 50 && (await metrics()) !== '1'; i += 1) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      const again = await open(capped, path);
      expect(again.status).toBe(200);
      await again.nth('snapshot', 1);
    } finally {
      await Promise.all(clients.splice(0).map((c) => c.close()));
      await capped.close();
    }
  });

  describe('Redis down (a private redis-server)', () => {
    let redis: RedisServer;
    let api: TestApp;

    beforeAll(async () => {
      redis = await RedisServer.start();
      api = await TestApp.start({ ...FAST, REDIS_URL: redis.url });
    });

    afterAll(async () => {
      await api?.close();
      await redis?.stop();
    });

    it('says it is stale while Redis is away, never shows what PostgreSQL does not have, and resyncs with a snapshot', async () => {
      const eventId = await createEvent(api, [
        { name: 'Stalls', rows: 1, seatsPerRow: 10, priceCents: 2000 },
      ]);
      const customers = await registerCustomers(api, 3);
      const client = await open(api, `/events/${eventId}/seats/stream`);
      await client.nth('snapshot', 1);
      expect((await hold(api, customers[0], eventId, ['A1'])).status).toBe(201);
      await client.nth('seats', 1);

      await redis.kill();
      await client.nth('stale', 1, 5000);
      // Holds go on through PostgreSQL alone; the stream shows nothing of them until Redis is back.
      expect((await hold(api, customers[1], eventId, ['A2'])).status).toBe(201);
      const framesWhileDown = client.events.length;
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(client.events.length).toBe(framesWhileDown);

      await redis.restart();
      const resync = await client.nth('snapshot', 2, 10_000);
      const inPostgres = await seatsOf(api, eventId);
      expect(new Map(resync.data.seats.map((s: any) => [s.label, s.status]))).toEqual(inPostgres);
      expect(inPostgres.get('A2')).toBe('held');
      expect((await hold(api, customers[2], eventId, ['A3'])).status).toBe(201);
      await converges(client, api, eventId);
    });

    it('FLUSHALL loses the history: a resume falls back to a snapshot, never a gap', async () => {
      const eventId = await createEvent(api, [
        { name: 'Stalls', rows: 1, seatsPerRow: 10, priceCents: 2000 },
      ]);
      const customers = await registerCustomers(api, 4);
      const client = await open(api, `/events/${eventId}/seats/stream`);
      await client.nth('snapshot', 1);
      expect((await hold(api, customers[0], eventId, ['A1'])).status).toBe(201);
      const seen = await client.nth('seats', 1);
      // Another subscriber stays, so the change it misses is published (and then flushed).
      const watcher = await open(api, `/events/${eventId}/seats/stream`);
      await watcher.nth('snapshot', 1);
      await client.close();
      expect((await hold(api, customers[1], eventId, ['A2'])).status).toBe(201);
      await watcher.nth('seats', 1);
      const probe = new Redis(redis.url, { maxRetriesPerRequest: 0 });
      await probe.flushall();
      probe.disconnect();

      const resumed = await open(api, `/events/${eventId}/seats/stream`, {
        'last-event-id': seen.id as string,
      });
      const snapshot = await resumed.nth('snapshot', 1);
      expect(snapshot.data.seq).toBe(Number(seen.id) + 1);
      expect(new Map(snapshot.data.seats.map((s: any) => [s.label, s.status]))).toEqual(
        await seatsOf(api, eventId),
      );
    });
  });

  describe('woken by commits (statements counted on the wire)', () => {
    let proxy: PgCountingProxy;
    let api: TestApp;
    const batches = (from: number) =>
      proxy.statementLog(from).filter((sql) => sql.includes('seatlock_stream_batch')).length;

    beforeAll(async () => {
      const url = new URL(testDatabaseUrl());
      proxy = await PgCountingProxy.start(url.hostname, Number(url.port || 5432), {
        logStatements: true,
      });
      api = await TestApp.start({ ...FAST, DATABASE_URL: proxy.urlFor(testDatabaseUrl()) });
    });

    afterAll(async () => {
      await api?.close();
      await proxy?.stop();
    });

    it('a watched instance sends no batch while nothing changes, and publishes a hold in one', async () => {
      const eventId = await createEvent(api, [
        { name: 'Stalls', rows: 1, seatsPerRow: 10, priceCents: 2000 },
      ]);
      const [alice] = await registerCustomers(api, 1);
      const client = await open(api, `/events/${eventId}/seats/stream`);
      await client.nth('snapshot', 1);
      await sleep(500);

      // STREAM_POLL_MS is 20: a poll would have sent ~75 batches in these 1.5 s.
      const quiet = proxy.statementLog().length;
      await sleep(1500);
      expect(batches(quiet)).toBe(0);

      const before = proxy.statementLog().length;
      expect((await hold(api, alice, eventId, ['A1'])).status).toBe(201);
      const message = await client.nth('seats', 1);
      expect(message.data.changes).toEqual([{ label: 'A1', status: 'held' }]);
      await sleep(300);
      expect(batches(before)).toBe(1);
    });
  });
});
