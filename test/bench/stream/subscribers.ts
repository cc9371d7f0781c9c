import { setTimeout as sleep } from 'node:timers/promises';
import { Agent } from 'undici';
import * as http from '../../support/bench/bench-http';
import * as pg from '../../support/bench/bench-postgres';
import * as cli from '../../support/bench/cli';
import { FrameCache, SseSubscriber } from '../../support/bench/sse-subscribers';
import { mapLimit, round } from '../../support/bench/stats';
import { clock, SETTLE_TIMEOUT_MS } from './stream-run';

/* The subscribers: opened (each on its connection, to its snapshot), settled, checked. */

export const OPEN_CONCURRENCY = 200;
const OPEN_TIMEOUT_MS = 180_000;

export function subscriberAgent(connections: number): Agent {
  return new Agent({
    connections,
    pipelining: 1,
    keepAliveTimeout: 600_000,
    keepAliveMaxTimeout: 600_000,
    headersTimeout: 120_000,
    bodyTimeout: 0,
    connectTimeout: 60_000,
  });
}

/** `n` subscribers of `path`, OPEN_CONCURRENCY opening at a time, each to its snapshot. */
export async function openSubscribers(o: {
  origin: string;
  path: string;
  n: number;
  agent: Agent;
  cache: FrameCache;
  expectedMessages: number;
}) {
  const options = {
    origin: o.origin,
    path: o.path,
    dispatcher: o.agent,
    cache: o.cache,
    clock,
    maxReconnects: 3,
    reconnectDelayMs: 1_000,
    expectedMessages: o.expectedMessages,
  };
  const subscribers = Array.from({ length: o.n }, () => new SseSubscriber(options));
  const started = clock();
  const failures: string[] = [];
  const opening = mapLimit(subscribers, OPEN_CONCURRENCY, async (subscriber) => {
    subscriber.connect();
    await subscriber.ready.catch((error: Error) => failures.push(error.message));
  });
  await cli.withTimeout(opening, OPEN_TIMEOUT_MS, `opening ${o.n} streams`);
  return { subscribers, openMs: round(clock() - started), failures };
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
    const behind = subscribers.filter((s) => s.seq !== last.seq).length;
    if (last.pending === 0 && behind === 0) break;
    await sleep(100);
  }
  // A little longer: anything still on its way (a duplicate, a late stale) arrives now.
  await sleep(500);
  const final = await streamRows(url, eventId);
  return { ...final, settleMs: round(clock() - started), settledSeq: last.seq };
}

export interface Expected {
  seats: Map<string, string>;
  sections: Record<string, number>;
}

/** What the API answers at the end: GET /events/{id}/seats and its sections' availability. */
export async function expectedState(api: string, eventId: string): Promise<Expected> {
  type Seat = { label: string; status: string };
  type Event = { sections: { name: string; available: number }[] };
  const get = async <T>(path: string) =>
    http.expectStatus(await http.call<T>(api, 'GET', path), 200, `GET ${path}`);
  const seats = await get<Seat[]>(`/events/${eventId}/seats`);
  const event = await get<Event>(`/events/${eventId}`);
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
  const label = cache.labels[at];
  const says = `GET /seats says ${expected.seats.get(label)}`;
  return `${label} is ${cache.statuses.name(s.state[at])}, ${says}`;
}

/** Gaps, losses, divergence, and each subscriber's end state against the API's. */
export function checkSubscribers(
  subscribers: readonly SseSubscriber[],
  cache: FrameCache,
  expected: Expected | null,
  finalSeq: number,
) {
  const codes = cache.labels.map((label) => expected?.seats.get(label));
  const wanted = Uint8Array.from(codes, (s) => (s === undefined ? 255 : cache.statuses.code(s)));
  const counts = { gaps: 0, mismatched: 0, sectionsMismatched: 0, behind: 0, lost: 0 };
  const samples: string[] = [];
  const perKind = new Map<string, number>();
  const sample = (kind: string, text: string) => {
    perKind.set(kind, (perKind.get(kind) ?? 0) + 1);
    if ((perKind.get(kind) ?? 0) <= 3) samples.push(text);
  };
  for (const [n, s] of subscribers.entries()) {
    if (s.gaps > 0) sample('gap', `subscriber ${n}: ${s.gaps} gaps (${s.gapSamples.join(', ')})`);
    if (s.failures.length > 0 || s.firstSnapshotSeq < 0) {
      const why = s.failures.slice(0, 3).join('; ') || 'no snapshot';
      sample('lost', `subscriber ${n} lost: ${why}`);
    }
    counts.gaps += Number(s.gaps > 0);
    counts.lost += Number(s.failures.length > 0 || s.firstSnapshotSeq < 0);
    counts.behind += Number(s.seq !== finalSeq);
    if (!expected) continue;
    const differs = mismatch(s, cache, expected, wanted);
    if (differs) counts.mismatched += 1;
    if (differs && differs !== 'seat list') {
      sample('mismatch', `subscriber ${n}: ${differs} (seq ${s.seq} of ${finalSeq})`);
    }
    const names = new Set([...Object.keys(s.sections), ...Object.keys(expected.sections)]);
    const sectionsDiffer = [...names].some((name) => s.sections[name] !== expected.sections[name]);
    counts.sectionsMismatched += Number(sectionsDiffer);
  }
  const divergent = subscribers.filter((s) => s.divergent > 0).length;
  const [mismatched, sectionsMismatched] = expected
    ? [counts.mismatched, counts.sectionsMismatched]
    : [null, null];
  return { ...counts, mismatched, sectionsMismatched, divergent, samples };
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
