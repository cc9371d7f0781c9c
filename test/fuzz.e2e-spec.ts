import { DataSource } from 'typeorm';
import { BuiltApp } from './support/built-app';
import { type Customer, countStatuses, registerCustomer } from './support/fixtures';
import {
  describeRequest,
  fc,
  type FuzzRequest,
  type OpenApiDocument,
  type Operation,
  operationsOf,
  requestsFor,
  unknownRoutes,
  type World,
} from './support/openapi-fuzz';
import { SseClient } from './support/sse-client';
import { eventually, PaymentStack, WEBHOOK_SECRET } from './support/payment-stack';
import type { ApiResponse, TestApp } from './support/test-app';
import { freshDatabase } from './support/global-setup';
import { TEST_ADMIN_TOKEN, testDatabaseUrl, testRedisUrl } from './support/test-env';

/**
 * Fuzzing from the OpenAPI document: at least 10,000 generated requests over real HTTP against one
 * API wired to a real gateway simulator. Whatever the request, never a 5xx; every 4xx is a
 * problem+json with a stable code; and the requests the API refuses change nothing.
 *
 * Two phases, so that "changed nothing" can be checked exactly:
 * 1. Requests that must be refused (each carries at least one defect) and requests that change
 *    nothing (reads, a repeated release, a signed gateway event the API ignores). The database
 *    snapshot (row count and digest of every row of every table) is taken before and after every
 *    batch and must not move.
 * 2. Mostly valid requests (holds, payments, registrations, events, endpoints), borderline ones (odd
 *    Unicode in names) and refused ones mixed. Never a 5xx; what the database gained is exactly
 *    what the 201s created.
 *
 * Reproduce: FUZZ_SEED=<seed> [FUZZ_RUNS=<requests>] [FUZZ_PATH=<path from the failure>] npx jest
 * --selectProjects=e2e --testPathPatterns fuzz. A failure prints the shrunk counterexample batch
 * and, first, the offending request(s) as curl-like lines.
 */

const SEED = Number(process.env.FUZZ_SEED ?? 20_260_611);
const RUNS = Number(process.env.FUZZ_RUNS ?? 10_240);
const PATH = process.env.FUZZ_PATH;
/** Requests in flight at once (one batch). */
const BATCH = 32;
/** Share of the requests in the valid phase. */
const VALID_SHARE = 0.1;
const REJECT_BATCHES = Math.ceil((RUNS * (1 - VALID_SHARE)) / BATCH);
const VALID_BATCHES = Math.ceil((RUNS * VALID_SHARE) / BATCH);

const PROBLEM_CODE = /^[A-Z_]+\.[A-Z_]+$/;

let stack: PaymentStack;
let api: TestApp;
let db: DataSource;
let doc: OpenApiDocument;
let ops: Operation[];
let world: World;

interface Sent {
  request: FuzzRequest;
  phase: 1 | 2;
  response?: ApiResponse;
}
const sent: Sent[] = [];

/** Row count and a digest of every column of every row, per table of the public schema. */
async function snapshot(): Promise<Record<string, string>> {
  const tables: { name: string }[] = await db.query(
    `SELECT table_name AS name FROM information_schema.tables
     WHERE table_schema = 'public' AND table_type = 'BASE TABLE'
       -- The seat stream's queue and counters: its drain works off changes of earlier batches.
       AND table_name NOT IN ('migrations', 'seat_changes', 'seat_streams')
     ORDER BY table_name`,
  );
  const [row] = await db.query(
    `SELECT ${tables
      .map(
        ({ name }) =>
          `(SELECT count(*) || ':' || md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), ''))
            FROM "${name}" t) AS "${name}"`,
      )
      .join(', ')}`,
  );
  return row;
}

function diff(a: Record<string, string>, b: Record<string, string>): string[] {
  return Object.keys({ ...a, ...b })
    .filter((k) => a[k] !== b[k])
    .map((k) => `${k}: ${a[k]} → ${b[k]}`);
}

/** What is wrong with this answer to this request (empty: nothing). */
function problemsOf(request: FuzzRequest, response: ApiResponse, phase: 1 | 2): string[] {
  const found: string[] = [];
  const { status } = response;
  if (status >= 500) found.push(`a ${status}`);
  if (status >= 400) {
    const type = response.headers['content-type'] ?? '';
    if (!type.startsWith('application/problem+json')) found.push(`content-type "${type}"`);
    const body = response.body as Record<string, unknown> | string;
    if (typeof body !== 'object' || body === null) {
      found.push('a body that is not a JSON object');
    } else {
      for (const member of ['type', 'title', 'detail', 'code'] as const) {
        if (typeof body[member] !== 'string' || (body[member] as string).length === 0)
          found.push(`problem member ${member} missing or empty`);
      }
      if (body.status !== status) found.push(`problem status ${String(body.status)} ≠ ${status}`);
      if (typeof body.code === 'string' && !PROBLEM_CODE.test(body.code))
        found.push(`code "${body.code}" does not match ${PROBLEM_CODE}`);
    }
  }
  if (request.expect === 'rejected' && (status < 400 || status >= 500))
    found.push(`expected a 4xx refusal, got ${status}`);
  if (request.expect === 'ok' && phase === 1 && (status < 200 || status >= 300))
    found.push(`expected a 2xx, got ${status}`);
  return found;
}

function describeResponse(response: ApiResponse): string {
  const body = typeof response.body === 'string' ? response.body : JSON.stringify(response.body);
  return `→ ${response.status} ${response.headers['content-type'] ?? '(no content-type)'} ${body.slice(0, 300)}`;
}

/** A seat stream answers 200 and never ends: take its status and headers, then hang up. */
async function sendToStream(request: FuzzRequest): Promise<ApiResponse> {
  const client = await SseClient.open(`${api.url}${request.path}`, request.headers);
  try {
    const body = client.status === 200 ? '' : await client.problem().catch(() => '');
    return { status: client.status, headers: client.headers, body };
  } finally {
    await client.close();
  }
}

async function send(request: FuzzRequest, phase: 1 | 2): Promise<ApiResponse> {
  const response =
    request.method === 'GET' && /\/seats\/stream(\?|$)/.test(request.path)
      ? await sendToStream(request)
      : await api.request(request.method, request.path, undefined, {
          headers: request.headers,
          raw: request.body,
        });
  sent.push({ request, phase, response });
  return response;
}

/** Sends a batch at once; throws a readable error naming every request answered wrongly. */
async function runBatch(batch: FuzzRequest[], phase: 1 | 2): Promise<void> {
  const responses = await Promise.all(batch.map((r) => send(r, phase)));
  const failures = batch.flatMap((request, i) => {
    const found = problemsOf(request, responses[i], phase);
    return found.length
      ? [
          `${found.join(', ')}:\n    ${describeRequest(request)}\n    ${describeResponse(responses[i])}`,
        ]
      : [];
  });
  if (failures.length)
    throw new Error(`${failures.length} bad answer(s):\n  ${failures.join('\n  ')}`);
}

/** Every operation gets an equal share, unknown routes a small one. */
function requestArbitrary(bias: number): fc.Arbitrary<FuzzRequest> {
  return fc.oneof(...ops.map((op) => ({ weight: 4, arbitrary: requestsFor(op, world, bias) })), {
    weight: 2,
    arbitrary: unknownRoutes(ops, world),
  });
}

function fcOptions(numRuns: number): fc.Parameters<[FuzzRequest[]]> {
  return {
    seed: SEED,
    numRuns,
    ...(PATH ? { path: PATH } : {}),
    // Shrinking resends whole batches; bound it so a failure reports within the test timeout.
    interruptAfterTimeLimit: 200_000,
    markInterruptAsFailure: true,
  };
}

/** Waits until the outbox, the deliveries and the payments have nothing left to do. */
async function settled(): Promise<void> {
  await eventually(
    'the outbox, deliveries and payments to settle',
    async () => {
      const [row] = await db.query(`
        SELECT (SELECT count(*) FROM outbox_messages WHERE status = 'pending')::int
             + (SELECT count(*) FROM notification_deliveries WHERE status = 'pending')::int
             + (SELECT count(*) FROM payments WHERE next_action IS NOT NULL OR status = 'pending')::int
             AS busy`);
      return row.busy === 0;
    },
    30_000,
  );
}

/**
 * Every table is compared after every batch, so the fuzz has a database of its own: what earlier
 * test files left behind would make each comparison slower (phase 1 ran into its time limit).
 */
function fuzzDatabaseUrl(): string {
  const url = new URL(testDatabaseUrl());
  url.pathname = `${url.pathname}_fuzz`;
  return url.toString();
}

async function fetchDocument(): Promise<OpenApiDocument> {
  // The document the built app serves: the swagger plugin of the tsc build fills in the schemas
  // and query parameters, which the app under test (compiled by swc for Jest) leaves out.
  const built = await BuiltApp.start({
    DATABASE_URL: fuzzDatabaseUrl(),
    REDIS_URL: testRedisUrl(),
    ADMIN_TOKEN: TEST_ADMIN_TOKEN,
    LOG_LEVEL: 'silent',
    MIGRATIONS_RUN: 'false',
    SWEEP_INTERVAL_MS: '3600000',
    RECONCILE_INTERVAL_MS: '3600000',
    NOTIFY_POLL_MS: '3600000',
  });
  try {
    return (await (await fetch(`${built.url}/docs-json`)).json()) as OpenApiDocument;
  } finally {
    await built.stop();
  }
}

beforeAll(async () => {
  await freshDatabase(fuzzDatabaseUrl());
  // Side by side; the stack is kept even if the document cannot be had, so afterAll stops it.
  const [fetched, started] = await Promise.allSettled([
    fetchDocument(),
    PaymentStack.start({
      DATABASE_URL: fuzzDatabaseUrl(),
      HOLD_TTL_SECONDS: '3600',
      // Every table is compared batch by batch: the sweeper must not expire holds of a few seconds
      // that earlier test files left behind. (The reconciler stays on: the settle wait before the
      // phases needs it to finish their payments.)
      SWEEP_INTERVAL_MS: '3600000',
      NOTIFY_POLL_MS: '100',
      NOTIFY_RETRY_BASE_MS: '100',
      NOTIFY_MAX_ATTEMPTS: '2',
      NOTIFY_SEND_TIMEOUT_MS: '1000',
    }),
  ]);
  if (started.status === 'fulfilled') stack = started.value;
  if (fetched.status === 'rejected') throw fetched.reason;
  if (started.status === 'rejected') throw started.reason;
  doc = fetched.value;
  api = stack.api;
  db = api.app.get(DataSource);
  ops = operationsOf(doc);

  // The world: one event, Alice with a held, a confirmed and a released booking, Bob with a held
  // one, both with a webhook endpoint and in-app notifications.
  const event = await api.post(
    '/admin/events',
    {
      name: 'Fuzz night',
      startsAt: '2027-06-01T19:30:00Z',
      venue: 'Fuzz Hall',
      currency: 'EUR',
      sections: [
        { name: 'Stalls', rows: 3, seatsPerRow: 10, priceCents: 5000 },
        { name: 'Balcony', rows: 2, seatsPerRow: 10, priceCents: 3000 },
      ],
    },
    { token: TEST_ADMIN_TOKEN },
  );
  expect(event.status).toBe(201);
  const eventId: string = event.body.id;
  const alice: Customer = await registerCustomer(api);
  const bob: Customer = await registerCustomer(api);
  const held = await stack.hold(alice, eventId, ['A1', 'A2']);
  const confirmed = await stack.hold(alice, eventId, ['A3']);
  expect((await stack.pay(alice, confirmed)).status).toBe(201);
  const released = await stack.hold(alice, eventId, ['A4']);
  expect((await api.delete(`/bookings/${released}`, { token: alice.token })).status).toBe(200);
  const bobHeld = await stack.hold(bob, eventId, ['B1', 'B2']);
  const endpoints = [];
  for (const who of [alice, bob]) {
    const created = await api.post(
      '/webhook-endpoints',
      { url: 'https://example.com/hooks/fuzz', events: ['payment.refunded'] },
      { token: who.token },
    );
    expect(created.status).toBe(201);
    endpoints.push({
      id: created.body.id,
      owner: who === alice ? 'alice' : 'bob',
      tag: 'endpoint',
    });
  }
  await settled();

  const notifications: { id: string; customer_id: string }[] = await db.query(
    `SELECT id, customer_id FROM notifications ORDER BY created_at`,
  );
  const outbox: { id: string; status: string }[] = await db.query(
    `SELECT id, status FROM outbox_messages ORDER BY created_at`,
  );
  const seats: { label: string; status: string }[] = (await api.get(`/events/${eventId}/seats`))
    .body;
  const ownerOf = (customerId: string) => (customerId === alice.id ? 'alice' : 'bob');
  world = {
    adminToken: TEST_ADMIN_TOKEN,
    webhookSecret: WEBHOOK_SECRET,
    tokens: { alice: alice.token, bob: bob.token },
    emails: { alice: alice.email, bob: bob.email },
    eventId,
    labels: seats.map((s) => s.label),
    freeLabels: seats.filter((s) => s.status === 'free').map((s) => s.label),
    heldLabels: seats.filter((s) => s.status !== 'free').map((s) => s.label),
    maxSeatsPerBooking: 10,
    resources: {
      event: [{ id: eventId, owner: null, tag: 'event' }],
      booking: [
        { id: held, owner: 'alice', tag: 'held' },
        { id: confirmed, owner: 'alice', tag: 'confirmed' },
        { id: released, owner: 'alice', tag: 'released' },
        { id: bobHeld, owner: 'bob', tag: 'held' },
      ],
      notification: notifications.map((n) => ({
        id: n.id,
        owner: ownerOf(n.customer_id),
        tag: 'notification',
      })),
      outbox: outbox.map((m) => ({ id: m.id, owner: null, tag: m.status })),
      endpoint: endpoints as World['resources'][string],
    },
  };
  expect(world.resources.notification.length).toBeGreaterThan(0);
}, 120_000);

afterAll(async () => {
  await stack?.close();
});

describe(`fuzzing from the OpenAPI document (seed ${SEED}, ${RUNS} requests)`, () => {
  it('the document lists every route of the app under test, with schemas to fuzz', async () => {
    const served = (await api.get('/docs-json')).body as OpenApiDocument;
    const names = (d: OpenApiDocument) =>
      Object.entries(d.paths)
        .flatMap(([p, m]) => Object.keys(m).map((x) => `${x.toUpperCase()} ${p}`))
        .sort();
    expect(names(doc)).toEqual(names(served));
    expect(ops.length).toBeGreaterThanOrEqual(20);
    const withBodies = ops.filter((o) => o.body?.properties).map((o) => o.name);
    expect(withBodies).toEqual(
      expect.arrayContaining(['POST /customers', 'POST /admin/events', 'POST /bookings']),
    );
  });

  it(`phase 1 (seed ${SEED}): ${REJECT_BATCHES * BATCH} refused or read-only requests, never a 5xx, every 4xx a problem, the database unchanged after every batch`, async () => {
    const start = await snapshot();
    const arbitrary = fc.array(
      requestArbitrary(3).filter((r) => r.expect !== 'any'),
      { minLength: BATCH, maxLength: BATCH },
    );
    await fc.assert(
      fc.asyncProperty(arbitrary, async (batch) => {
        const before = await snapshot();
        await runBatch(batch, 1);
        const after = await snapshot();
        const changed = diff(before, after);
        if (changed.length) {
          const suspects = batch.filter((r) => r.expect !== 'rejected' || r.method !== 'GET');
          throw new Error(
            `the database changed (${changed.join('; ')}) during a batch of refused or read-only requests:\n  ` +
              suspects.map((r) => describeRequest(r)).join('\n  '),
          );
        }
      }),
      fcOptions(REJECT_BATCHES),
    );
    expect(await snapshot()).toEqual(start);
  }, 300_000);

  it(`phase 2 (seed ${SEED}): ${VALID_BATCHES * BATCH} mostly valid requests, never a 5xx, and the database gained exactly what the 201s created`, async () => {
    const count = async () => {
      const [row] = await db.query(`
        SELECT (SELECT count(*) FROM customers)::int AS customers,
               (SELECT count(*) FROM events)::int AS events,
               (SELECT count(*) FROM seats)::int AS seats,
               (SELECT count(*) FROM bookings)::int AS bookings,
               (SELECT count(*) FROM webhook_endpoints)::int AS webhook_endpoints,
               (SELECT count(*) FROM payments)::int AS payments,
               (SELECT count(*) FROM idempotency_keys)::int AS idempotency_keys,
               (SELECT count(*) FROM gateway_events)::int AS gateway_events`);
      return row as Record<string, number>;
    };
    const before = await count();
    const from = sent.length;
    await fc.assert(
      fc.asyncProperty(
        fc.array(requestArbitrary(30), { minLength: BATCH, maxLength: BATCH }),
        (batch) => runBatch(batch, 2),
      ),
      fcOptions(VALID_BATCHES),
    );
    await settled();
    const after = await count();
    const mine = sent.slice(from);
    const answered = (op: string, ok: (r: ApiResponse) => boolean) =>
      mine.filter((s) => s.request.op === op && s.response && ok(s.response));
    const created = (op: string) =>
      answered(op, (r) => r.status === 201 && r.headers['idempotent-replayed'] !== 'true');
    const seatsCreated = created('POST /admin/events').reduce(
      (sum, s) =>
        sum +
        (
          JSON.parse(s.request.body!).sections as {
            rows?: number;
            seatsPerRow?: number;
            capacity?: number;
          }[]
        ).reduce((n, x) => n + (x.capacity ?? (x.rows ?? 0) * (x.seatsPerRow ?? 0)), 0),
      0,
    );
    const paymentsTried = answered(
      'POST /bookings/{id}/payments',
      (r) =>
        ![400, 401, 403, 404].includes(r.status) && r.headers['idempotent-replayed'] !== 'true',
    ).length;
    const delta = (k: string) => after[k] - before[k];
    expect({
      customers: delta('customers'),
      events: delta('events'),
      seats: delta('seats'),
      bookings: delta('bookings'),
      webhook_endpoints: delta('webhook_endpoints'),
    }).toEqual({
      customers: created('POST /customers').length,
      events: created('POST /admin/events').length,
      seats: seatsCreated,
      bookings: created('POST /bookings').length,
      webhook_endpoints: created('POST /webhook-endpoints').length,
    });
    expect(delta('payments')).toBeLessThanOrEqual(paymentsTried);
    expect(delta('payments')).toBeGreaterThanOrEqual(
      created('POST /bookings/{id}/payments').length,
    );
    expect(delta('idempotency_keys')).toBeLessThanOrEqual(paymentsTried);
    expect(delta('gateway_events')).toBeLessThanOrEqual(
      answered('POST /payments/webhook', (r) => r.status === 200).length,
    );
    // The valid phase did do things.
    expect(created('POST /bookings').length).toBeGreaterThan(0);
    expect(created('POST /customers').length).toBeGreaterThan(0);
  }, 300_000);

  it('sent at least 10,000 requests covering every operation, none answered 5xx', () => {
    const byPhase = (p: 1 | 2) => sent.filter((s) => s.phase === p);
    const mix: Record<string, Record<string, number>> = {};
    for (const s of sent) {
      const row = (mix[s.request.op] ??= {});
      const key = `p${s.phase} ${s.request.expect}`;
      row[key] = (row[key] ?? 0) + 1;
    }
    console.log(
      `fuzz seed ${SEED}: ${sent.length} requests (phase 1: ${byPhase(1).length}, phase 2: ${byPhase(2).length})\n` +
        `statuses: ${JSON.stringify(countStatuses(sent.map((s) => s.response?.status ?? 0)))}\n` +
        `by expectation: ${JSON.stringify(
          sent.reduce<Record<string, number>>(
            (acc, s) => ({ ...acc, [s.request.expect]: (acc[s.request.expect] ?? 0) + 1 }),
            {},
          ),
        )}\n` +
        Object.entries(mix)
          .map(([op, row]) => `  ${op.padEnd(40)} ${JSON.stringify(row)}`)
          .join('\n'),
    );
    if (!process.env.FUZZ_RUNS) expect(sent.length).toBeGreaterThanOrEqual(10_000);
    for (const op of ops) expect(Object.keys(mix)).toContain(op.name);
    expect(
      sent
        .filter((s) => (s.response?.status ?? 500) >= 500)
        .map((s) => `${describeRequest(s.request)} → ${s.response?.status}`),
    ).toEqual([]);
  });
});
