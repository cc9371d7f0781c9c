import { setTimeout as sleep } from 'node:timers/promises';
import * as http from '../../support/bench/bench-http';
import { BenchError } from '../../support/bench/cli';
import { loadWindow } from '../../support/bench/load';
import { log, replaceApi, run, type Stack } from './cost-stack';
import { CONNECTIONS, type Prepared } from './operations';

/*
 * Expiry: an API with a short TTL (and the sweeper at 1 s) holds distinct seats at full speed for
 * the window, unmeasured; once that after-work is done the measurement starts, and lasts until the
 * sweeper expired every one of those holds (then their after-work). An operation: one expired hold.
 */

/** The holds' own after-work must be done before the first of them lapses. */
const TTL_MARGIN_SECONDS = 20;

export const expiryTtl = (seconds: number): number => seconds + TTL_MARGIN_SECONDS;

/** Restarts the API with the short TTL and holds seats of a fresh event for `seconds`. */
export async function holdForExpiry(stack: Stack, p: Prepared, seconds: number) {
  await replaceApi(stack, expiryTtl(seconds));
  const api = stack.api.url;
  const event = await http.createEvent(api, run.adminToken, 'Expiry', 100, 100);
  await http.warmCaches(api, p.customers, [event]);
  log(`expiry: holding for ${seconds} s, TTL ${expiryTtl(seconds)} s`);
  let [turn, seat] = [0, 0];
  const startedAt = performance.now();
  const result = await loadWindow({
    url: api,
    connections: CONNECTIONS,
    seconds,
    expected: 201,
    next: () => {
      const { token } = p.customers[turn++ % p.customers.length];
      const label = event.labels[Math.min(seat++, event.labels.length - 1)];
      const body = JSON.stringify({ eventId: event.id, seatIds: [label] });
      return {
        method: 'POST',
        path: '/bookings',
        body,
        headers: { authorization: `Bearer ${token}` },
      };
    },
  });
  const firstLapse = startedAt + expiryTtl(seconds) * 1000;
  return {
    eventId: event.id,
    holds: result.ok,
    exhausted: seat >= event.labels.length,
    firstLapse,
  };
}

const COUNTS = `SELECT count(*) FILTER (WHERE status = 'held')::int AS held,
  count(*) FILTER (WHERE status = 'expired')::int AS expired FROM bookings WHERE event_id = $1`;

/**
 * Until every held booking of `eventId` is expired; answers how many the sweeper expired
 * meanwhile (and how many before: their cost is not in the window).
 */
export async function awaitExpiries(stack: Stack, eventId: string, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  const count = async () =>
    (await stack.db.query<{ held: number; expired: number }>(COUNTS, [eventId])).rows[0];
  const before = await count();
  for (;;) {
    const now = await count();
    if (now.held === 0) {
      return { ops: now.expired - before.expired, detail: { expiredBeforeStart: before.expired } };
    }
    if (Date.now() > deadline) {
      throw new BenchError(`expiry: ${now.held} holds still held after ${timeoutMs} ms`);
    }
    await sleep(500);
  }
}
