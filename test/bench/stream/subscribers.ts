import { setTimeout as sleep } from 'node:timers/promises';
import { Agent } from 'undici';
import * as http from '../../support/bench/bench-http';
import * as pg from '../../support/bench/bench-postgres';
import { withTimeout } from '../../support/bench/cli';
import { FrameCache, SseSubscriber } from '../../support/bench/sse-subscribers';
import { mapLimit, round } from '../../support/bench/stats';
import { clock, SETTLE_TIMEOUT_MS } from './stream-run';

/* The subscribers: opened (each on its connection, to its snapshot), settled, checked. */

export const OPEN_CONCURRENCY = 200;

/** `n` subscribers of `path`, OPEN_CONCURRENCY opening at a time; `close` ends them all. */
export async function openSubscribers(
  origin: string,
  path: string,
  n: number,
  cache: FrameCache,
  expectedMessages: number,
) {
  // One connection each (undici's default pipelining is 1); the requests set their timeouts.
  const keepAlive = { keepAliveTimeout: 600_000, keepAliveMaxTimeout: 600_000 };
  const dispatcher = new Agent({ connections: n + 16, connectTimeout: 60_000, ...keepAlive });
  const options = { origin, path, dispatcher, cache, expectedMessages };
  const subscribers = Array.from({ length: n }, () => new SseSubscriber(options));
  const close = async () => {
    for (const s of subscribers) s.close();
    await dispatcher.destroy().catch(() => undefined);
  };
  const [started, failures] = [clock(), [] as string[]];
  const opening = mapLimit(subscribers, OPEN_CONCURRENCY, async (subscriber) => {
    subscriber.connect();
    await subscriber.ready.catch((error: Error) => failures.push(error.message));
  });
  await withTimeout(opening, 180_000, `opening ${n} streams`).catch(async (error) => {
    await close();
    throw error;
  });
  return { subscribers, openMs: round(clock() - started), failures, close };
}

/** Unpublished changes of the event and its last seq, straight from PostgreSQL. */
async function streamRows(url: string, eventId: string) {
  return pg.withClient(url, async (client) => {
    const { rows } = await client.query<{ pending: number; seq: string | null }>(
      `SELECT (SELECT count(*)::int FROM seat_changes WHERE event_id = $1) AS pending,
              (SELECT seq FROM seat_streams WHERE event_id = $1) AS seq`,
      [eventId],
    );
    return { pending: rows[0].pending, seq: Number(rows[0].seq ?? 0) };
  });
}

/** Until nothing of the event is unpublished and every open subscriber has the last seq. */
export async function settle(url: string, eventId: string, subscribers: readonly SseSubscriber[]) {
  const started = clock();
  let last = { pending: -1, seq: -1 };
  while (clock() - started < SETTLE_TIMEOUT_MS) {
    last = await streamRows(url, eventId);
    if (last.pending === 0 && subscribers.every((s) => s.seq === last.seq)) break;
    await sleep(100);
  }
  // A little longer: anything still on its way (a duplicate, a late stale) arrives now.
  await sleep(500);
  const final = await streamRows(url, eventId);
  return { ...final, settleMs: round(clock() - started), settledSeq: last.seq };
}

export type Expected = Awaited<ReturnType<typeof expectedState>>;

/** What the API answers at the end: GET /events/{id}/seats and its sections' availability. */
export async function expectedState(api: string, eventId: string) {
  const get = async <T>(path: string) =>
    http.expectStatus(await http.call<T>(api, 'GET', path), 200, `GET ${path}`);
  const seats = await get<{ label: string; status: string }[]>(`/events/${eventId}/seats`);
  const event = await get<{ sections: { name: string; available: number }[] }>(
    `/events/${eventId}`,
  );
  return {
    seats: new Map(seats.map((s) => [s.label, s.status])),
    sections: Object.fromEntries(event.sections.map((s) => [s.name, s.available])),
  };
}

/** The first seat where `s` differs from GET /seats, described; '' when its state equals it. */
function mismatch(s: SseSubscriber, cache: FrameCache, expected: Expected, wanted: Uint8Array) {
  const differs = expected.seats.size !== cache.labels.length || s.unknownLabels > 0;
  const at = wanted.findIndex((code, i) => s.state[i] !== code);
  if (!differs && at < 0 && s.state.length === wanted.length) return '';
  if (at < 0) return 'seat list';
  const [label, code] = [cache.labels[at], s.state[at]];
  const says = `GET /seats says ${expected.seats.get(label)}`;
  return `${label} is ${cache.statuses[code] ?? `?${code}`}, ${says}`;
}

/** Gaps, losses, divergence, and each subscriber's end state against the API's. */
export function checkSubscribers(
  subscribers: readonly SseSubscriber[],
  cache: FrameCache,
  expected: Expected | null,
  finalSeq: number,
) {
  const codes = cache.labels.map((label) => expected?.seats.get(label));
  const wanted = Uint8Array.from(codes, (s) => (s === undefined ? 255 : cache.code(s)));
  const counts = { gaps: 0, mismatched: 0, sectionsMismatched: 0, behind: 0, lost: 0 };
  const [samples, perKind] = [[] as string[], new Map<string, number>()];
  const sample = (kind: string, text: string) => {
    perKind.set(kind, (perKind.get(kind) ?? 0) + 1);
    if ((perKind.get(kind) ?? 0) <= 3) samples.push(text);
  };
  for (const [n, s] of subscribers.entries()) {
    const lost = s.failures.length > 0 || s.firstSnapshotSeq < 0;
    if (s.gaps > 0) sample('gap', `subscriber ${n}: ${s.gaps} gaps (${s.gapSamples.join(', ')})`);
    if (lost)
      sample('lost', `subscriber ${n} lost: ${s.failures.slice(0, 3).join('; ') || 'no snapshot'}`);
    counts.gaps += Number(s.gaps > 0);
    counts.lost += Number(lost);
    counts.behind += Number(s.seq !== finalSeq);
    if (!expected) continue;
    const differs = mismatch(s, cache, expected, wanted);
    counts.mismatched += Number(differs !== '');
    if (differs && differs !== 'seat list') {
      sample('mismatch', `subscriber ${n}: ${differs} (seq ${s.seq} of ${finalSeq})`);
    }
    const names = new Set([...Object.keys(s.sections), ...Object.keys(expected.sections)]);
    counts.sectionsMismatched += Number(
      [...names].some((name) => s.sections[name] !== expected.sections[name]),
    );
  }
  const divergent = subscribers.filter((s) => s.divergent > 0).length;
  if (!expected)
    return { ...counts, mismatched: null, sectionsMismatched: null, divergent, samples };
  return { ...counts, divergent, samples };
}

/** Frames and bytes summed over the subscribers. */
export function tally(subscribers: readonly SseSubscriber[]) {
  const sum = (pick: (s: SseSubscriber) => number) =>
    subscribers.reduce((total, s) => total + pick(s), 0);
  const perSubscriber = subscribers.map((s) => s.seatsMessages);
  return {
    stale: sum((s) => s.stale),
    pings: sum((s) => s.pings),
    reconnects: sum((s) => s.reconnects),
    resnapshots: sum((s) => Math.max(0, s.snapshots - 1)),
    duplicates: sum((s) => s.duplicates),
    otherFrames: sum((s) => s.otherFrames),
    divergentFrames: sum((s) => s.divergent),
    messagesMin: Math.min(...perSubscriber),
    messagesMax: Math.max(...perSubscriber),
    bytesTotal: sum((s) => s.bytes),
  };
}
