import { Agent, request } from 'undici';
import type { BenchCustomer } from '../../support/bench/bench-http';
import * as cli from '../../support/bench/cli';
import { clock, until } from './stream-run';

/*
 * The load: holds at `rate` per second for `seconds`, open loop (hold i is sent at i / rate whatever
 * the earlier answers), one seat each, by the customers in turn. Hold i takes seat i mod seats: a
 * seat that comes round again is released by its owner RELEASE_LEAD_MS before that hold is due,
 * and the hold waits for the release's answer. Each answer's arrival is stamped (the commit
 * happened before it).
 */

const LOAD_CONNECTIONS = 64;
const RELEASE_LEAD_MS = 1_000;

export interface Change {
  kind: 'hold' | 'release';
  index: number;
  label: string;
  dueAt: number;
  sentAt: number;
  answeredAt: number;
  status: string;
  bookingId: string | null;
  text: string;
}

interface Request {
  token: string;
  body?: unknown;
  method?: 'POST' | 'DELETE';
  path?: string;
}

/** One request on `agent`; never throws. */
async function send(agent: Agent, api: string, req: Request, timeoutMs: number) {
  const headers: Record<string, string> = { authorization: `Bearer ${req.token}` };
  if (req.body !== undefined) headers['content-type'] = 'application/json';
  try {
    const response = await request(`${api}${req.path ?? '/bookings'}`, {
      method: req.method ?? 'POST',
      headers,
      body: req.body === undefined ? undefined : JSON.stringify(req.body),
      dispatcher: agent,
      signal: AbortSignal.timeout(timeoutMs),
    });
    return { status: String(response.statusCode), text: await response.body.text() };
  } catch (error) {
    const { code, name, message } = error as NodeJS.ErrnoException;
    return { status: `error:${code ?? name}`, text: message };
  }
}

export interface LoadOptions {
  api: string;
  eventId: string;
  labels: readonly string[];
  customers: readonly BenchCustomer[];
  rate: number;
  seconds: number;
}

export async function runLoad(o: LoadOptions) {
  const agent = new Agent({ connections: LOAD_CONNECTIONS, keepAliveTimeout: 60_000 });
  const count = Math.max(1, Math.round(o.rate * o.seconds));
  const [interval, seats, start] = [1000 / o.rate, o.labels.length, clock() + 20];
  const load = { holds: [] as Change[], releases: [] as Change[], delayedBySeat: 0 };
  const freed: Promise<unknown>[] = [];
  const change = (kind: Change['kind'], index: number, dueAt: number): Change => {
    const [sentAt, answeredAt, label] = [NaN, NaN, o.labels[index % seats]];
    return { kind, index, label, dueAt, sentAt, answeredAt, status: '', bookingId: null, text: '' };
  };
  /** Sends `req` at the change's moment; the answer's status, and its text when not `ok`. */
  const exchange = async (c: Change, req: Request, ok: string) => {
    await until(c.dueAt);
    c.sentAt = clock();
    const reply = await send(agent, o.api, req, 60_000);
    [c.answeredAt, c.status] = [clock(), reply.status];
    if (reply.status !== ok) c.text = reply.text.slice(0, 300);
    return reply;
  };
  const holdAndRelease = async (i: number): Promise<void> => {
    const hold = (load.holds[i] = change('hold', i, start + i * interval));
    await until(hold.dueAt);
    if (i >= seats) {
      const waitedAt = clock();
      await freed[i - seats];
      if (clock() - waitedAt > 1) load.delayedBySeat += 1;
    }
    const { token } = o.customers[i % o.customers.length];
    const body = { eventId: o.eventId, seatIds: [hold.label] };
    const reply = await exchange(hold, { token, body }, '201');
    if (reply.status === '201') hold.bookingId = JSON.parse(reply.text).id ?? null;
    if (i + seats >= count || !hold.bookingId) return;
    const release = change('release', i, start + (i + seats) * interval - RELEASE_LEAD_MS);
    load.releases.push(release);
    release.bookingId = hold.bookingId;
    await exchange(
      release,
      { token, method: 'DELETE', path: `/bookings/${hold.bookingId}` },
      '200',
    );
  };
  const tasks = Array.from({ length: count }, (_, i) => (freed[i] = holdAndRelease(i)));
  await cli.withTimeout(Promise.all(tasks), (o.seconds + 120) * 1000, 'the holds');
  const end = clock();
  await agent.close().catch(() => undefined);
  return { ...load, start, end, count };
}
