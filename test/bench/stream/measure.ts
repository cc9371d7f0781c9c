import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import * as http from '../../support/bench/bench-http';
import type { Child } from '../../support/bench/child-processes';
import { loadWindow } from '../../support/bench/load';
import { memoryStatus } from '../../support/bench/proc-stats';
import { fmt } from '../../support/bench/report';
import { FrameCache, type SseSubscriber } from '../../support/bench/sse-subscribers';
import { mib, rssNow, watchApi } from './api-watch';
import { fanoutCeiling, publishCeiling } from './ceilings';
import { runLoad } from './hold-load';
import { latencies, matchMessages } from './latency';
import {
  children,
  GROUPS,
  log,
  run,
  SEATS_PER_ROW,
  type Stack,
  stack,
  streamSampler,
  watched,
} from './stream-run';
import * as subs from './subscribers';

/*
 * The run, phase by phase, on one API: open the subscribers, the holds, settle and check, then
 * the polling alternative on the same server (the streams closed), then the ceilings (API stopped).
 */

export const POLL_CONNECTIONS = 64;

export interface StreamOptions {
  subscribers: number;
  /** Rows of SEATS_PER_ROW seats in the event (20: 1,000 seats; 200: 10,000). */
  rows: number;
  rate: number;
  seconds: number;
  pollSeconds: number;
  liveSeconds: number;
  fanoutCeiling: boolean;
}

const apiGroups = (s: Stack, api = s.api) => ({
  [api.pid]: GROUPS.api,
  ...(s.redisPid === null ? {} : { [s.redisPid]: GROUPS.redis }),
});

const deathOf = ({ hasExited, child, tail }: Child) =>
  hasExited ? { code: child.exitCode, signal: child.signalCode, tail: tail.slice(-15) } : null;

/** The event, the customers, their tokens and the seat map warm, the lock scripts cached. */
async function prepare({ api }: Stack, rows: number) {
  const { adminToken } = run;
  const event = await http.createEvent(api.url, adminToken, 'Stream', rows, SEATS_PER_ROW);
  log('registering 200 customers, warming caches');
  const customers = await http.registerCustomers(api.url, 200, randomBytes(4).toString('hex'));
  await http.warmCaches(api.url, customers, [event]);
  const warm = await http.createEvent(api.url, adminToken, 'Warm-up', 1, 4);
  const body = { eventId: warm.id, seatIds: [warm.labels[0]] };
  const hold = await http.call(api.url, 'POST', '/bookings', { token: customers[0].token, body });
  http.expectStatus(hold, 201, 'the warm-up hold');
  return { event, customers };
}
type Prepared = Awaited<ReturnType<typeof prepare>>;

/** 2. The holds, CPU and this process's event-loop delay watched; the bytes streamed meanwhile. */
async function hold(o: StreamOptions, s: Stack, p: Prepared, subscribers: SseSubscriber[]) {
  const bytes = () => subscribers.reduce((sum, x) => sum + x.bytes, 0);
  const bytesBefore = bytes();
  const { event, customers } = p;
  const target = { api: s.api.url, eventId: event.id, labels: event.labels, customers };
  const held = await watched(apiGroups(s), () => {
    log(`holds: ${o.rate}/s for ${o.seconds} s`);
    return runLoad({ ...target, rate: o.rate, seconds: o.seconds });
  });
  const { result: load, cpu, eventLoopDelayMs } = held;
  return { load, cpu, eventLoopDelayMs, bytesWindow: bytes() - bytesBefore };
}

/** The frames the API counted (its /metrics), by kind. */
async function framesCounted(api: string) {
  const count = (kind: string) => http.metricValue(api, 'seatlock_stream_frames_total', { kind });
  const [seats, snapshot] = [await count('seats'), await count('snapshot')];
  return { seats, snapshot, stale: await count('stale') };
}

/** 1 to 5: the subscribers open (each to its snapshot), the holds, the end state; the API watched. */
async function stream(o: StreamOptions, s: Stack, p: Prepared) {
  const cache = new FrameCache(p.event.labels);
  const rssBefore = rssNow(s.api.pid);
  const stopWatching = watchApi(s.api);
  const logBefore = s.api.snapshot();
  log(`opening ${fmt(o.subscribers)} streams, ${subs.OPEN_CONCURRENCY} at a time`);
  const path = `/events/${p.event.id}/seats/stream`;
  const messages = Math.round(o.rate * o.seconds) * 2 + 64;
  const opened = await subs.openSubscribers(s.api.url, path, o.subscribers, cache, messages);
  const { subscribers, openMs, failures } = opened;
  try {
    const seqs = subscribers.map((x) => x.firstSnapshotSeq);
    await sleep(1_000);
    log(`${fmt(subscribers.length - failures.length)} streams open in ${openMs} ms`);
    const open = {
      openMs,
      failures: failures.slice(0, 10),
      failed: failures.length,
      snapshotSeqs: [...new Set(seqs)],
      baseSeq: Math.min(...seqs.filter((q) => q >= 0)),
    };
    const rssOpen = rssNow(s.api.pid);
    const held = await hold(o, s, p, subscribers);
    log('settling');
    const settled = await subs.settle(s.databaseUrl, p.event.id, subscribers);
    const watched = await stopWatching();
    const peakAfterStream = mib(memoryStatus(s.api.pid)?.peak);
    // 3. Every subscriber checked against the API's own answers.
    const died = deathOf(s.api);
    const expected = died ? null : await subs.expectedState(s.api.url, p.event.id);
    const checks = subs.checkSubscribers(subscribers, cache, expected, settled.seq);
    const frames = died ? null : await framesCounted(s.api.url);
    const match = matchMessages(cache, held.load, open.baseSeq, settled.seq);
    const { rssMaxDuring: maxDuring, ...watchedRest } = watched;
    const first = cache.firstSnapshot;
    return {
      open,
      ...held,
      settled,
      died,
      checks,
      frames,
      ...watchedRest,
      rss: { before: rssBefore, open: rssOpen, maxDuring, peakAfterStream },
      match,
      snapshotFrame: first ? `id: ${first.seq}\nevent: snapshot\ndata: ${first.text}\n\n` : '',
      latency: latencies(subscribers, match.messages),
      tally: subs.tally(subscribers),
      apiLog: s.api.logSince(logBefore),
    };
  } finally {
    // Closed: the polling windows run on the same server, without them.
    await opened.close();
  }
}

/**
 * 6. The polling alternative and the framework floor: GET /events/{id}/seats and GET /health/live
 * on the same server, or on a fresh one (same database) when the first died.
 */
async function poll(o: StreamOptions, s: Stack, p: Prepared) {
  let api = s.api;
  if (deathOf(api)) {
    log('the API died: a fresh one (same database) for the polling windows');
    api = await s.startApi();
  }
  const path = `/events/${p.event.id}/seats`;
  const seats = await http.call(api.url, 'GET', path);
  http.expectStatus(seats, 200, `GET ${path}`);
  const window = (route: string, seconds: number, warmupSeconds: number) => {
    log(`GET ${route}, ${POLL_CONNECTIONS} connections, ${warmupSeconds} s + ${seconds} s`);
    return loadWindow({
      url: api.url,
      connections: POLL_CONNECTIONS,
      seconds,
      warmupSeconds,
      expected: 200,
      next: () => ({ method: 'GET', path: route }),
      sampler: streamSampler(apiGroups(s, api)),
    });
  };
  const seatsWindow = await window(path, o.pollSeconds, 2);
  const liveWindow = await window('/health/live', o.liveSeconds, 1);
  return { api, seatsBytes: Buffer.byteLength(seats.text), seatsWindow, liveWindow };
}

export async function measure(o: StreamOptions) {
  const s = await stack();
  const p = await prepare(s, o.rows);
  const streamed = await stream(o, s, p);
  await sleep(1_000);
  const afterClose = streamed.died ? null : rssNow(s.api.pid);
  const { api: pollApi, ...polled } = await poll(o, s, p);
  const diedPolling = deathOf(s.api);
  const peak = streamed.died ? null : mib(memoryStatus(s.api.pid)?.peak);
  if (pollApi !== s.api) await children.stop(pollApi);
  await children.stop(s.api);
  // 7. The ceilings, the API stopped: the minimal fan-out replaying the same frames; PUBLISH.
  const { match, died: diedStreaming, snapshotFrame, ...rest } = streamed;
  const replayable = o.fanoutCeiling && match.messages.length > 0 && snapshotFrame;
  const fanout = replayable
    ? await fanoutCeiling({
        subscribers: o.subscribers,
        labels: p.event.labels,
        snapshotFrame,
        messages: match.messages,
        windowStart: streamed.load.start,
      })
    : null;
  return {
    ...rest,
    match: { ...match, messages: match.messages.length },
    rss: { ...streamed.rss, afterClose, peak },
    died: diedStreaming ?? diedPolling,
    pollOnFreshApi: pollApi !== s.api,
    ...polled,
    fanout,
    publish: await publishCeiling(s.redisUrl),
  };
}
