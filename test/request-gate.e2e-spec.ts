import { Agent, request } from 'undici';
import { Registry } from 'prom-client';
import { DataSource } from 'typeorm';
import { countStatuses, createEvent, registerCustomers } from './support/fixtures';
import { expectProblem } from './support/problem-assertions';
import type { ApiResponse } from './support/test-app';
import { TestApp } from './support/test-app';

/**
 * The door (RequestGate): at most MAX_REQUESTS_IN_FLIGHT requests past it, the rest wait in line
 * (nothing refused while the line has room), past MAX_REQUESTS_QUEUED waiting a request is answered
 * 503 SERVICE.OVERLOADED with Retry-After and changes nothing; probes and /metrics never wait.
 */

/** Seats A1…A10, B1…B10, … of a rows × 10 event: the n-th label. */
const label = (n: number) => `${String.fromCharCode(65 + Math.floor(n / 10))}${(n % 10) + 1}`;

function gauge(metrics: string, name: string): number {
  const line = metrics.split('\n').find((l) => l.startsWith(`${name} `));
  if (!line) throw new Error(`${name} missing from /metrics`);
  return Number(line.split(' ')[1]);
}

async function load(api: TestApp): Promise<{ inFlight: number; queued: number; shed: number }> {
  const text = (await api.get('/metrics')).body as string;
  return {
    inFlight: gauge(text, 'seatlock_http_requests_in_flight'),
    queued: gauge(text, 'seatlock_http_requests_queued'),
    shed: gauge(text, 'seatlock_http_requests_shed_total'),
  };
}

/**
 * Reads the door's gauges every millisecond until `done` settles; answers the highest of each seen.
 * In process, from the registry: a /metrics read over HTTP took so long on a loaded machine that a
 * whole burst passed between two samples.
 */
async function watch(api: TestApp, done: Promise<unknown>) {
  const registry = api.app.get(Registry);
  const read = async (name: string) => {
    const metric = registry.getSingleMetric(name);
    if (!metric) throw new Error(`${name} missing from the registry`);
    return (await metric.get()).values[0]?.value ?? 0;
  };
  const peak = { inFlight: 0, queued: 0, samples: 0 };
  let settled = false;
  void done.finally(() => (settled = true));
  while (!settled) {
    peak.inFlight = Math.max(peak.inFlight, await read('seatlock_http_requests_in_flight'));
    peak.queued = Math.max(peak.queued, await read('seatlock_http_requests_queued'));
    peak.samples += 1;
    await new Promise((r) => setTimeout(r, 1));
  }
  return peak;
}

describe('the request gate (real PostgreSQL and Redis)', () => {
  /** 4 in flight, a long line. */
  let narrow: TestApp;
  /** 1 in flight, 5 waiting. */
  let tiny: TestApp;
  let db: DataSource;

  beforeAll(async () => {
    narrow = await TestApp.start({ MAX_REQUESTS_IN_FLIGHT: '4', MAX_REQUESTS_QUEUED: '5000' });
    tiny = await TestApp.start({ MAX_REQUESTS_IN_FLIGHT: '1', MAX_REQUESTS_QUEUED: '5' });
    db = narrow.app.get(DataSource);
  });

  afterAll(async () => {
    await Promise.all([narrow?.close(), tiny?.close()]);
  });

  it('500 concurrent holds through 4 slots: every one answered 201, never more than 4 past the door', async () => {
    const eventId = await createEvent(narrow, [
      { name: 'Stalls', rows: 26, seatsPerRow: 20, priceCents: 1000 },
    ]);
    const customers = await registerCustomers(narrow, 500);
    const labels = customers.map(
      (_, i) => `${String.fromCharCode(65 + (i % 26))}${1 + Math.floor(i / 26)}`,
    );
    const burst = Promise.all(
      customers.map((who, i) =>
        narrow.post('/bookings', { eventId, seatIds: [labels[i]] }, { token: who.token }),
      ),
    );
    const peak = await watch(narrow, burst);
    const responses = await burst;

    console.log(
      `gate 4/5000: 500 holds → ${JSON.stringify(countStatuses(responses.map((r) => r.status)))}; ` +
        `peak in flight ${peak.inFlight}, peak waiting ${peak.queued} (${peak.samples} samples)`,
    );
    expect(countStatuses(responses.map((r) => r.status))).toEqual({ 201: 500 });
    expect(peak.inFlight).toBeLessThanOrEqual(4);
    expect(peak.queued).toBeGreaterThan(0);
    expect(await load(narrow)).toMatchObject({ inFlight: 0, queued: 0, shed: 0 });
  });

  it('past the line: 503 SERVICE.OVERLOADED with Retry-After, the seat untouched; /health/live still answers', async () => {
    // Set up through the roomy instance (same database): registering 50 at once is itself a crowd.
    const eventId = await createEvent(narrow, [
      { name: 'Floor', rows: 10, seatsPerRow: 10, priceCents: 1000 },
    ]);
    const customers = await registerCustomers(narrow, 100);
    const shedBefore = (await load(tiny)).shed;
    const holds = customers.map((who, i) =>
      tiny.post('/bookings', { eventId, seatIds: [label(i)] }, { token: who.token }),
    );
    const live = await tiny.get('/health/live');
    const responses = await Promise.all(holds);

    expect(live.status).toBe(200);
    const statuses = countStatuses(responses.map((r) => r.status));
    console.log(`gate 1/5: 100 holds at once → ${JSON.stringify(statuses)}`);
    expect(Object.keys(statuses).sort()).toEqual(['201', '503']);
    expect(statuses[201]).toBeGreaterThanOrEqual(6);
    const shed: ApiResponse[] = responses.filter((r) => r.status === 503);
    for (const response of shed) {
      expectProblem(response, 503, 'SERVICE.OVERLOADED');
      expect(response.headers['retry-after']).toBe('1');
    }
    expect((await load(tiny)).shed - shedBefore).toBe(shed.length);

    // Exactly the 201s' seats are held; every shed request's seat is still free.
    const held = responses.flatMap((r, i) => (r.status === 201 ? [label(i)] : [])).sort();
    const rows: { label: string }[] = await db.query(
      `SELECT label FROM seats WHERE event_id = $1 AND status = 'held' ORDER BY label`,
      [eventId],
    );
    expect(rows.map((r) => r.label).sort()).toEqual(held);
    const bookings: { count: number }[] = await db.query(
      `SELECT count(*)::int AS count FROM bookings WHERE event_id = $1`,
      [eventId],
    );
    expect(bookings[0].count).toBe(held.length);
    expect(await load(tiny)).toMatchObject({ inFlight: 0, queued: 0 });
  });

  it('clients that hang up while they wait leave the line; the slot is not lost', async () => {
    const eventId = await createEvent(narrow, [
      { name: 'Floor', rows: 1, seatsPerRow: 10, priceCents: 1000 },
    ]);
    const customers = await registerCustomers(narrow, 6);
    // Six at once, on their own connections, each given up after 1 ms: some were waiting.
    const agent = new Agent({ connections: 6 });
    const abandoned = await Promise.allSettled(
      customers.map((who, i) =>
        request(`${tiny.url}/bookings`, {
          method: 'POST',
          dispatcher: agent,
          headers: { authorization: `Bearer ${who.token}`, 'content-type': 'application/json' },
          body: JSON.stringify({ eventId, seatIds: [label(i)] }),
          signal: AbortSignal.timeout(1),
        }).then((r) => r.body.text()),
      ),
    );
    await agent.close();
    expect(abandoned.some((r) => r.status === 'rejected')).toBe(true);

    // The line is empty again, and the one slot still serves everyone, one after the other.
    let after = await load(tiny);
    for (let i = 0; i < 50 && (after.inFlight > 0 || after.queued > 0); i += 1) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      after = await load(tiny);
    }
    expect(after).toMatchObject({ inFlight: 0, queued: 0 });
    const [late] = await registerCustomers(narrow, 1);
    const answers = await Promise.all(
      [7, 8, 9].map((n) =>
        tiny.post('/bookings', { eventId, seatIds: [label(n)] }, { token: late.token }),
      ),
    );
    expect(answers.map((r) => r.status)).toEqual([201, 201, 201]);
  });
});
