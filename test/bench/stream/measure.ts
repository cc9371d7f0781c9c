import { randomBytes } from 'node:crypto';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Agent } from 'undici';
import * as http from '../../support/bench/bench-http';
import type { Child } from '../../support/bench/child-processes';
import { type LoadResult, loadWindow } from '../../support/bench/load';
import { memoryStatus } from '../../support/bench/proc-stats';
import { FrameCache, type SseSubscriber, StatusCodes } from '../../support/bench/sse-subscribers';
import { fmt } from '../../support/bench/table';
import { mib, rssNow, watchApi } from './api-watch';
import { fanoutCeiling, loopDelay, publishCeiling } from './ceilings';
import { runLoad } from './hold-load';
import { latencies, matchMessages } from './latency';
import { children, GROUPS, log, run, SEATS_PER_ROW, streamSampler } from './stream-run';
import * as subs from './subscribers';

/*
 * The run, phase by phase, on one API: open the subscribers, the holds, settle and check, then
 * the polling alternative on the same server (the streams closed), then the ceilings (API stopped).
 */

export const CUSTOMERS = 200;
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

/** The API (and how to start another on its database), its database and private Redis. */
export interface Stack {
  api: Child;
  startApi: () => Promise<Child>;
  databaseUrl: string;
  redisUrl: string;
  redisPid: number | null;
}

const apiGroups = (s: Stack, api = s.api) => ({
  [api.pid]: GROUPS.api,
  ...(s.redisPid === null ? {} : { [s.redisPid]: GROUPS.redis }),
});

const died = (api: Child) =>
  api.hasExited
    ? { code: api.child.exitCode, signal: api.child.signalCode, tail: api.tail.slice(-15) }
    : null;

/** The event, the customers, their tokens and the seat map warm, the lock scripts cached. */
async function prepare({ api }: Stack, rows: number) {
  const { adminToken } = run;
  const event = await http.createEvent(api.url, adminToken, 'Stream', rows, SEATS_PER_ROW);
  log(`registering ${CUSTOMERS} customers, warming caches`);
  const tag = randomBytes(4).toString('hex');
  const customers = await http.registerCustomers(api.url, CUSTOMERS, tag);
  await http.warmCaches(api.url, customers, [event]);
  const warm = await http.createEvent(api.url, adminToken, 'Warm-up', 1, 4);
  const body = { eventId: warm.id, seatIds: [warm.labels[0]] };
  const hold = await http.call(api.url, 'POST', '/bookings', { token: customers[0].token, body });
  http.expectStatus(hold, 201, 'the warm-up hold');
  return { event, customers };
}
type Prepared = Awaited<ReturnType<typeof prepare>>;

/** 1. The subscribers, each to its snapshot. */
async function open(o: StreamOptions, s: Stack, p: Prepared, cache: FrameCache, agent: Agent) {
  log(`opening ${fmt(o.subscribers)} streams, ${subs.OPEN_CONCURRENCY} at a time`);
  const path = `/events/${p.event.id}/seats/stream`;
  const opened = await subs.openSubscribers({
    origin: s.api.url,
    path,
    n: o.subscribers,
    agent,
    cache,
    expectedMessages: Math.round(o.rate * o.seconds) * 2 + 64,
  });
  const { subscribers, openMs, failures } = opened;
  const seqs = subscribers.map((x) => x.firstSnapshotSeq);
  await sleep(1_000);
  log(`${fmt(subscribers.length - failures.length)} streams open in ${openMs} ms`);
  const summary = {
    openMs,
    failures: failures.slice(0, 10),
    failed: failures.length,
    snapshotSeqs: [...new Set(seqs)],
    baseSeq: Math.min(...seqs.filter((q) => q >= 0)),
  };
  return { subscribers, summary, rss: rssNow(s.api.pid) };
}

/** 2. The holds, with CPU and this process's event-loop delay watched. */
async function hold(o: StreamOptions, s: Stack, p: Prepared, subscribers: SseSubscriber[]) {
  const cpu = streamSampler(apiGroups(s));
  const delay = monitorEventLoopDelay({ resolution: 10 });
  const bytes = () => subscribers.reduce((sum, x) => sum + x.bytes, 0);
  const bytesBefore = bytes();
  delay.enable();
  await cpu.start();
  log(`holds: ${o.rate}/s for ${o.seconds} s`);
  const { event, customers } = p;
  const target = { api: s.api.url, eventId: event.id, labels: event.labels, customers };
  const load = await runLoad({ ...target, rate: o.rate, seconds: o.seconds });
  const report = await cpu.stop();
  delay.disable();
  const bytesWindow = bytes() - bytesBefore;
  return { load, cpu: report, eventLoopDelayMs: loopDelay(delay), bytesWindow };
}

/** 3. Every subscriber checked against the API's own answers; the frames it counted. */
async function check(
  s: Stack,
  p: Prepared,
  cache: FrameCache,
  subscribers: SseSubscriber[],
  seq: number,
) {
  const dead = died(s.api);
  const expected = dead ? null : await subs.expectedState(s.api.url, p.event.id);
  const checks = subs.checkSubscribers(subscribers, cache, expected, seq);
  const count = (kind: string) =>
    http.metricValue(s.api.url, 'seatlock_stream_frames_total', { kind });
  if (dead) return { died: dead, checks, frames: null };
  const frames = {
    seats: await count('seats'),
    snapshot: await count('snapshot'),
    stale: await count('stale'),
  };
  return { died: dead, checks, frames };
}

/** 1 to 5: the subscribers open, the holds, the end state; the API watched throughout. */
async function stream(o: StreamOptions, s: Stack, p: Prepared) {
  const cache = new FrameCache(p.event.labels, new StatusCodes());
  const rssBefore = rssNow(s.api.pid);
  const stopWatching = watchApi(s.api);
  const logBefore = s.api.snapshot();
  const agent = subs.subscriberAgent(o.subscribers + 16);
  let subscribers: SseSubscriber[] = [];
  try {
    const opened = await open(o, s, p, cache, agent);
    subscribers = opened.subscribers;
    const held = await hold(o, s, p, subscribers);
    log('settling');
    const settled = await subs.settle(s.databaseUrl, p.event.id, subscribers);
    const watched = await stopWatching();
    const peakAfterStream = mib(memoryStatus(s.api.pid)?.peak);
    const checked = await check(s, p, cache, subscribers, settled.seq);
    const match = matchMessages(cache, held.load, opened.summary.baseSeq, settled.seq);
    const rss = {
      before: rssBefore,
      open: opened.rss,
      maxDuring: watched.rssMaxDuring,
      peakAfterStream,
    };
    const first = cache.firstSnapshot;
    return {
      open: opened.summary,
      ...held,
      settled,
      ...checked,
      ...watched,
      rss,
      match,
      snapshotFrame: first ? `id: ${first.seq}\nevent: snapshot\ndata: ${first.text}\n\n` : '',
      latency: latencies(subscribers, match.messages),
      tally: subs.tally(subscribers),
      apiLog: s.api.logSince(logBefore),
    };
  } finally {
    // Closed: the polling windows run on the same server, without them.
    for (const x of subscribers) x.close();
    await agent.destroy().catch(() => undefined);
  }
}

type Streamed = Awaited<ReturnType<typeof stream>>;

/**
 * 6. The polling alternative and the framework floor: GET /events/{id}/seats and GET /health/live
 * on the same server, or on a fresh one (same database) when the first died.
 */
async function poll(o: StreamOptions, s: Stack, p: Prepared) {
  let api = s.api;
  if (died(api)) {
    log('the API died: a fresh one (same database) for the polling windows');
    api = await s.startApi();
  }
  const path = `/events/${p.event.id}/seats`;
  const seats = await http.call(api.url, 'GET', path);
  http.expectStatus(seats, 200, `GET ${path}`);
  const window = (route: string, seconds: number, warmupSeconds: number) => {
    log(`GET ${route}, ${POLL_CONNECTIONS} connections, ${warmupSeconds} s + ${seconds} s`);
    const next = () => ({ method: 'GET' as const, path: route });
    const sampler = streamSampler(apiGroups(s, api));
    return loadWindow({
      url: api.url,
      connections: POLL_CONNECTIONS,
      seconds,
      warmupSeconds,
      expected: 200,
      next,
      sampler,
    });
  };
  const seatsWindow: LoadResult = await window(path, o.pollSeconds, 2);
  const liveWindow: LoadResult = await window('/health/live', o.liveSeconds, 1);
  return { api, seatsBytes: Buffer.byteLength(seats.text), seatsWindow, liveWindow };
}

/** 7. The ceilings, the API stopped: the minimal fan-out replaying the same frames; PUBLISH. */
async function ceilings(o: StreamOptions, s: Stack, p: Prepared, m: Streamed) {
  const { messages } = m.match;
  const fanout =
    o.fanoutCeiling && messages.length > 0 && m.snapshotFrame
      ? await fanoutCeiling({
          subscribers: o.subscribers,
          labels: p.event.labels,
          snapshotFrame: m.snapshotFrame,
          messages,
          windowStart: m.load.start,
        })
      : null;
  return { fanout, publish: await publishCeiling(s.redisUrl) };
}

export async function measure(o: StreamOptions, s: Stack) {
  const p = await prepare(s, o.rows);
  const streamed = await stream(o, s, p);
  await sleep(1_000);
  const afterClose = streamed.died ? null : rssNow(s.api.pid);
  const { api: pollApi, ...polled } = await poll(o, s, p);
  const diedPolling = died(s.api);
  const peak = streamed.died ? null : mib(memoryStatus(s.api.pid)?.peak);
  if (pollApi !== s.api) await children.stop(pollApi);
  await children.stop(s.api);
  const { match, died: diedStreaming, ...rest } = streamed;
  return {
    ...rest,
    eventId: p.event.id,
    match: {
      neverDelivered: match.neverDelivered,
      unmatched: match.unmatched,
      messages: match.messages.length,
    },
    rss: { ...streamed.rss, afterClose, peak },
    died: diedStreaming ?? diedPolling,
    pollOnFreshApi: pollApi !== s.api,
    ...polled,
    ...(await ceilings(o, s, p, streamed)),
  };
}
