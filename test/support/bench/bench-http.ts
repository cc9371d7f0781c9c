import { type Dispatcher, request } from 'undici';
import { BenchError } from './cli';
import { mapLimit } from './stats';

/* The benchmarks' set-up and check requests to the API (the measured load has its own clients). */

export interface Answer<T = any> {
  status: number;
  body: T;
  text: string;
  headers: Record<string, string | string[] | undefined>;
}

export interface CallOptions {
  body?: unknown;
  token?: string;
  idempotencyKey?: string;
  timeoutMs?: number;
  dispatcher?: Dispatcher;
}

/** One request; the answer's body parsed when it is JSON. */
export async function call<T = any>(
  baseUrl: string,
  method: Dispatcher.HttpMethod,
  route: string,
  options: CallOptions = {},
): Promise<Answer<T>> {
  const headers: Record<string, string> = {};
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  if (options.idempotencyKey) headers['idempotency-key'] = options.idempotencyKey;
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  const response = await request(`${baseUrl}${route}`, {
    method,
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
    dispatcher: options.dispatcher,
    signal: AbortSignal.timeout(options.timeoutMs ?? 30_000),
  });
  const text = await response.body.text();
  let body: unknown = text;
  if (String(response.headers['content-type'] ?? '').includes('json') && text) {
    try {
      body = JSON.parse(text);
    } catch {
      // not JSON after all: the text
    }
  }
  return { status: response.statusCode, body: body as T, text, headers: response.headers };
}

export function expectStatus<T>(answer: Answer<T>, status: number, what: string): T {
  if (answer.status !== status) {
    throw new BenchError(`${what}: expected ${status}, got ${answer.status} ${answer.text}`);
  }
  return answer.body;
}

export type BenchEvent = { id: string; labels: string[] };

/** An event of one section (`rows` × `seatsPerRow`) through the admin API. */
export async function createEvent(
  api: string,
  adminToken: string,
  name: string,
  rows: number,
  seatsPerRow: number,
  priceCents = 5_000,
): Promise<BenchEvent> {
  const event = expectStatus(
    await call<{ id: string; seats: { label: string }[] }>(api, 'POST', '/admin/events', {
      token: adminToken,
      body: {
        name: `${name} ${new Date().toISOString()}`,
        startsAt: '2027-06-01T19:30:00Z',
        venue: 'Bench Arena',
        currency: 'EUR',
        sections: [{ name: 'Floor', rows, seatsPerRow, priceCents }],
      },
    }),
    201,
    'POST /admin/events',
  );
  if (!Array.isArray(event.seats) || event.seats.length !== rows * seatsPerRow) {
    throw new BenchError(`POST /admin/events answered ${event.seats?.length} seats`);
  }
  return { id: event.id, labels: event.seats.map((seat) => seat.label) };
}

export type BenchCustomer = { id: string; token: string };

/** `count` customers with e-mails unique to `tag`, 16 registrations at a time. */
export function registerCustomers(
  api: string,
  count: number,
  tag: string,
): Promise<BenchCustomer[]> {
  return mapLimit(
    Array.from({ length: count }, (_, i) => i),
    16,
    async (i) =>
      expectStatus(
        await call<BenchCustomer>(api, 'POST', '/customers', {
          body: { email: `bench-${tag}-${i}@example.test`, name: `Bench ${tag} ${i}` },
        }),
        201,
        'POST /customers',
      ),
  );
}

/** Every customer's token and every event's seat map into the API's caches. */
export async function warmCaches(
  api: string,
  customers: readonly BenchCustomer[],
  events: readonly BenchEvent[],
): Promise<void> {
  for (const event of events) {
    expectStatus(await call(api, 'GET', `/events/${event.id}/seats`), 200, 'GET seats');
  }
  await mapLimit(customers, 16, async ({ token }) =>
    expectStatus(await call(api, 'GET', '/bookings', { token }), 200, 'GET /bookings'),
  );
}

/** A counter of the API's /metrics, summed over its label sets that match `labels`. */
export async function metricValue(
  api: string,
  name: string,
  labels: Record<string, string> = {},
): Promise<number> {
  const text = expectStatus(await call<string>(api, 'GET', '/metrics'), 200, 'GET /metrics');
  let sum = 0;
  for (const line of String(text).split('\n')) {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!match || match[1] !== name) continue;
    const set = match[2] ?? '';
    if (Object.entries(labels).every(([key, value]) => set.includes(`${key}="${value}"`))) {
      sum += Number(match[3]);
    }
  }
  return sum;
}
