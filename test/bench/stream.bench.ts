/*
 * The live seat stream under a sale (issue 14): N subscribers on one instance, holds at a fixed
 * rate, every change to every subscriber in order, and what polling would cost instead.
 *
 *   npm run bench:stream -- [--subscribers 5000] [--rate 200] [--seconds 10] [--quick]
 *                           [--poll-seconds 5] [--live-seconds 5] [--no-fanout-ceiling] [--json]
 *
 * Starts the built API (npm start's node options, rate limits off, STREAM_* defaults) on a fresh
 * database of its own with a private redis-server, creates one event of 1,000 seats (one section,
 * 20 rows x 50) and registers 200 customers (tokens and the seat map warmed, one hold on a
 * warm-up event so the lock scripts are cached). Then:
 *
 *   1. N subscribers open GET /events/{id}/seats/stream, each on an undici connection of its own
 *      (test/support/bench/sse-subscribers.ts), 200 opening at a time; each waits for its snapshot.
 *   2. Holds at `rate` per second for `seconds` (open loop: hold i is sent at i / rate whatever
 *      the earlier answers), one seat each, by the customers in turn, through POST /bookings.
 *      Hold i takes seat i mod 1,000: past 1,000 holds a seat comes round again, so hold i is
 *      released by its owner (DELETE /bookings/{id}) 1 s before hold i + 1,000 is due, and that
 *      hold waits for the release's answer. At 200/s for 10 s: 2,000 holds and 1,000 releases,
 *      3,000 changes; the last 1,000 holds stay held. The time each 201 (and each release's 200)
 *      arrives is recorded on this process's clock (the commit happened before it).
 *   3. Settle: until PostgreSQL has no unpublished change of the event and every subscriber has
 *      the last seq (20 s at most). Each subscriber's seqs after its snapshot must run without a
 *      gap, and its snapshot + changes must equal GET /events/{id}/seats (and its last sections
 *      GET /events/{id}'s availability).
 *   4. Commit-to-client latency: per change, from its 201 (or 200) arriving here to each
 *      subscriber receiving the seats message that carries it (messages are matched to changes by
 *      label: the n-th `held` of a seat is its n-th hold); p50 / p99 / max over all (subscriber,
 *      change) pairs, and per change to its first and its last subscriber.
 *   5. API CPU and RSS (/proc) through the window, the machine's busy cores, this process's
 *      event-loop delay (it stamps both ends of every latency).
 *   6. The polling alternative, the subscribers closed, on the same server: GET
 *      /events/{id}/seats and GET /health/live on 64 connections (autocannon, fixed windows), then
 *      what N pollers would ask at 1 s and at the stream's p50 as interval, in requests/s, API
 *      instances at the measured rate, API cores and bytes per second, beside the stream's own.
 *   7. Ceilings, the API stopped: the minimal fan-out (a Node process told of each change over a
 *      pipe writes it to N open text/event-stream responses, no database, no poll, no Redis; the
 *      same frames replayed at the same moments to N new subscribers), and raw Redis PUBLISH
 *      (redis-benchmark) against the messages per second the API published.
 *
 * Exit 1 on: a subscriber with a gap, a state unequal to GET /seats, a lost subscriber (a
 * connection error, the server ending its stream, a non-200, no snapshot), a frame whose content
 * differs between subscribers, or the API dying. Holds refused are reported, not failed.
 * Uses DATABASE_URL's server, only the database seatlock_bench_stream. See docs/benchmarks.md.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request } from 'undici';
import { freePort, RedisServer } from '../support/redis-server';
import * as http from '../support/bench/bench-http';
import * as pg from '../support/bench/bench-postgres';
import * as proc from '../support/bench/child-processes';
import * as cli from '../support/bench/cli';
import { type LoadResult, loadWindow } from '../support/bench/load';
import {
  commandLine,
  type CpuReport,
  CpuSampler,
  descendantPids,
  memoryStatus,
} from '../support/bench/proc-stats';
import { FrameCache, SseSubscriber, StatusCodes } from '../support/bench/sse-subscribers';
import { mapLimit, ratio, round } from '../support/bench/stats';
import { fmt, printJson, renderTable, type TableRow } from '../support/bench/table';

const ROWS = 20;
const SEATS_PER_ROW = 50;
const SEATS = ROWS * SEATS_PER_ROW;
const CUSTOMERS = 200;
const LOAD_CONNECTIONS = 64;
/** A seat's hold is released this long before the hold that takes the seat again is due. */
const RELEASE_LEAD_MS = 1_000;
const OPEN_CONCURRENCY = 200;
const OPEN_TIMEOUT_MS = 180_000;
const SETTLE_TIMEOUT_MS = 20_000;
const POLL_CONNECTIONS = 64;
const HOLD_TTL_SECONDS = 900;
const REDIS_BENCHMARK_CLIENTS = 50;
const REDIS_BENCHMARK_REQUESTS = 200_000;
/** STREAM_POLL_MS as the API runs it (its default): the publisher's drain interval. */
const STREAM_POLL_MS = 50;
const DATABASE = pg.benchDatabaseName('seatlock_bench_stream');
const log = cli.logger('stream');
const children = new proc.ChildProcesses(log, 10_000);
let privateRedis: RedisServer | null = null;
let scratchDir: string | null = null;
const clock = (): number => performance.now();

const USAGE = `Usage: npm run bench:stream -- [options]

  --subscribers N      streams open on the one instance (1 to 10000, default 5000; --quick 500)
  --rate R             holds per second (1 to 2000, default 200)
  --seconds S          seconds of holds (1 to 120, default 10; --quick 3)
  --poll-seconds S     measured seconds of the GET /events/{id}/seats window (default 5; --quick 3)
  --live-seconds S     measured seconds of the /health/live window (default 5; --quick 3)
  --no-fanout-ceiling  skip the minimal fan-out ceiling (its own N connections, the same replay)
  --quick              a smoke run: 500 subscribers, 3 s
  --json               also print one JSON object as the last line of stdout`;

function readOptions() {
  const [text, flag] = [{ type: 'string' }, { type: 'boolean' }] as const;
  const values = cli.parseBenchArgs(
    {
      subscribers: text,
      rate: text,
      seconds: text,
      'poll-seconds': text,
      'live-seconds': text,
      'no-fanout-ceiling': flag,
      quick: flag,
      json: flag,
    },
    USAGE,
  );
  const quick = values.quick === true;
  return {
    quick,
    subscribers: Math.floor(
      cli.numberOption('subscribers', values.subscribers, quick ? 500 : 5_000, 1, 10_000),
    ),
    rate: cli.numberOption('rate', values.rate, 200, 1, 2_000),
    seconds: cli.numberOption('seconds', values.seconds, quick ? 3 : 10, 1, 120),
    pollSeconds: cli.numberOption('poll-seconds', values['poll-seconds'], quick ? 3 : 5, 1, 120),
    liveSeconds: cli.numberOption('live-seconds', values['live-seconds'], quick ? 3 : 5, 1, 120),
    fanoutCeiling: values['no-fanout-ceiling'] !== true,
    json: values.json === true,
  };
}
type Options = ReturnType<typeof readOptions>;

/** This process's open-file limit (/proc/self/limits), or null elsewhere. */
function openFileLimit(): number | null {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max open files'));
    const soft = Number(line?.split(/\s{2,}/)[1]);
    return Number.isFinite(soft) ? soft : null;
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------------------------
// The stack

async function startApi(databaseUrl: string, redisUrl: string, adminToken: string) {
  const port = await freePort();
  const env = proc.benchApiEnv({
    DATABASE_URL: databaseUrl,
    REDIS_URL: redisUrl,
    PORT: String(port),
    LOCK_MODE: 'redis',
    ADMIN_TOKEN: adminToken,
    HOLD_TTL_SECONDS: String(HOLD_TTL_SECONDS),
    STREAM_POLL_MS: String(STREAM_POLL_MS),
    // Every subscriber connects from 127.0.0.1: the per-address cap (50) would refuse most.
    STREAM_MAX_PER_IP: '0',
    // Holds only: a closed port keeps the API from starting a gateway simulator of its own.
    GATEWAY_URL: 'http://127.0.0.1:9',
    NOTIFY_POLL_MS: '3600000',
  });
  const api = children.node('API', proc.API_MAIN, env, proc.apiNodeOptions());
  api.url = `http://127.0.0.1:${port}`;
  const probe = () => http.call(api.url, 'GET', '/health/ready', { timeoutMs: 2_000 });
  await proc.waitHealthy(api, probe, 60_000);
  return api;
}

/** The pid of our private redis-server (found by its port on the command line). */
function redisPid(port: number): number | null {
  for (const pid of descendantPids()) {
    const line = commandLine(pid) ?? '';
    // redis-server rewrites its title to "redis-server 127.0.0.1:<port>".
    const ours = line.includes(`:${port}`) || line.includes(`--port ${port}`);
    if (line.startsWith('redis-server') && ours) return pid;
  }
  return null;
}

/** CPU per group: the API, this process, the bench database's PostgreSQL, our redis-server. */
function sampler(apiPid: number, redis: number | null, extra: Record<number, string> = {}) {
  let backends = new Map<number, string>();
  const prepare = async (): Promise<void> => {
    const rows = await pg.withClient(pg.databaseUrl('postgres'), async (admin) => {
      const result = await admin.query(`SELECT pid, datname FROM pg_stat_activity`);
      return result.rows as { pid: number; datname: string | null }[];
    });
    backends = new Map(rows.map((row) => [Number(row.pid), String(row.datname ?? '')]));
  };
  return new CpuSampler(
    (p) => {
      if (p.pid === apiPid) return 'API (node)';
      if (extra[p.pid]) return extra[p.pid];
      if (p.pid === process.pid) return 'bench: subscribers + load (this node)';
      if (redis !== null && p.pid === redis) return 'redis-server (private)';
      if (p.comm !== 'postgres') return null;
      const database = backends.get(p.pid);
      if (database === DATABASE) return 'PostgreSQL: bench database';
      return !database || database === 'postgres' ? 'PostgreSQL: server' : null;
    },
    prepare,
    500,
  );
}

/** Samples the API's resident memory every 250 ms: the highest seen. */
function rssWatcher(pid: number) {
  let max = 0;
  const timer = setInterval(() => {
    const rss = memoryStatus(pid)?.rss;
    if (rss) max = Math.max(max, rss);
  }, 250);
  timer.unref();
  return {
    stop(): number | null {
      clearInterval(timer);
      return max > 0 ? mib(max) : null;
    },
  };
}

/**
 * The API's own view of its heap and event loop (prom-client's default metrics on /metrics),
 * every 500 ms: what a crash or a slow fan-out looked like from inside.
 */
function heapWatcher(api: string, clockStart: number) {
  const samples: { s: number; heapUsedMB: number | null; lagP99Ms: number | null }[] = [];
  let stopped = false;
  const pick = (text: string, name: string): number | null => {
    const match = new RegExp(`^${name}(?:\\{[^}]*\\})?\\s+(\\S+)`, 'm').exec(text);
    return match ? Number(match[1]) : null;
  };
  const loop = (async () => {
    while (!stopped) {
      const at = clock();
      try {
        const answer = await http.call<string>(api, 'GET', '/metrics', { timeoutMs: 5_000 });
        const text = String(answer.text);
        const heap = pick(text, 'nodejs_heap_size_used_bytes');
        const lag = pick(text, 'nodejs_eventloop_lag_p99_seconds');
        samples.push({
          s: round((at - clockStart) / 1000, 1) ?? 0,
          heapUsedMB: heap === null ? null : round(heap / 1e6, 1),
          lagP99Ms: lag === null ? null : round(lag * 1000, 1),
        });
      } catch {
        samples.push({
          s: round((at - clockStart) / 1000, 1) ?? 0,
          heapUsedMB: null,
          lagP99Ms: null,
        });
      }
      await sleep(Math.max(0, 500 - (clock() - at)));
    }
  })();
  return {
    samples,
    async stop() {
      stopped = true;
      await loop;
      const heaps = samples.map((x) => x.heapUsedMB).filter((x): x is number => x !== null);
      return {
        maxHeapUsedMB: heaps.length ? Math.max(...heaps) : null,
        lastHeapUsedMB: heaps.at(-1) ?? null,
        samples,
      };
    },
  };
}

/**
 * The kernel's socket queues of the streams (/proc/net/tcp, IPv4 loopback), every second: bytes
 * the API has handed to the kernel and the subscriber not yet acknowledged (the server side's
 * tx_queue), and bytes that arrived here and this process has not read yet (the client side's
 * rx_queue). Large server-side queues mean the subscribers read too slowly; neither growing
 * while the API's heap does means the API holds what it has not written yet itself.
 */
function socketQueueWatcher(port: number, clockStart: number) {
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  const samples: {
    s: number;
    sockets: number;
    serverTxKB: number;
    serverTxMaxKB: number;
    clientRxKB: number;
    clientRxMaxKB: number;
  }[] = [];
  const sample = () => {
    let text: string;
    try {
      text = readFileSync('/proc/net/tcp', 'utf8');
    } catch {
      return;
    }
    let sockets = 0;
    let tx = 0;
    let txMax = 0;
    let rx = 0;
    let rxMax = 0;
    for (const line of text.split('\n')) {
      const cells = line.trim().split(/\s+/);
      if (cells.length < 5 || cells[3] !== '01') continue; // ESTABLISHED only
      const [txHex, rxHex] = cells[4].split(':');
      if (cells[1].endsWith(`:${hex}`)) {
        sockets += 1;
        const n = parseInt(txHex, 16);
        tx += n;
        txMax = Math.max(txMax, n);
      } else if (cells[2].endsWith(`:${hex}`)) {
        const n = parseInt(rxHex, 16);
        rx += n;
        rxMax = Math.max(rxMax, n);
      }
    }
    samples.push({
      s: round((clock() - clockStart) / 1000, 1) ?? 0,
      sockets,
      serverTxKB: round(tx / 1024, 1) ?? 0,
      serverTxMaxKB: round(txMax / 1024, 1) ?? 0,
      clientRxKB: round(rx / 1024, 1) ?? 0,
      clientRxMaxKB: round(rxMax / 1024, 1) ?? 0,
    });
  };
  const timer = setInterval(sample, 1_000);
  timer.unref();
  return {
    samples,
    stop() {
      clearInterval(timer);
      sample();
      const max = (key: 'serverTxKB' | 'clientRxKB') =>
        samples.length ? Math.max(...samples.map((x) => x[key])) : null;
      return { maxServerTxKB: max('serverTxKB'), maxClientRxKB: max('clientRxKB'), samples };
    },
  };
}

/** MiB (what /proc reports) to MB, the suite's unit. */
function mib(value: number | null | undefined): number | null {
  return value === null || value === undefined ? null : round(value * 1.048576, 1);
}

function rssNow(pid: number): number | null {
  return mib(memoryStatus(pid)?.rss);
}

// ---------------------------------------------------------------------------------------------
// Subscribers

function subscriberAgent(connections: number): Agent {
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

/** `n` subscribers of `path` on `origin`, OPEN_CONCURRENCY opening at a time, each to its snapshot. */
async function openSubscribers(options: {
  origin: string;
  path: string;
  n: number;
  agent: Agent;
  cache: FrameCache;
  expectedMessages: number;
}) {
  const subscribers = Array.from(
    { length: options.n },
    () =>
      new SseSubscriber({
        origin: options.origin,
        path: options.path,
        dispatcher: options.agent,
        cache: options.cache,
        clock,
        maxReconnects: 3,
        reconnectDelayMs: 1_000,
        expectedMessages: options.expectedMessages,
      }),
  );
  const started = clock();
  const failures: string[] = [];
  const opening = mapLimit(subscribers, OPEN_CONCURRENCY, async (subscriber) => {
    subscriber.connect();
    try {
      await subscriber.ready;
    } catch (error) {
      failures.push((error as Error).message);
    }
  });
  await cli.withTimeout(opening, OPEN_TIMEOUT_MS, `opening ${options.n} streams`);
  return { subscribers, openMs: round(clock() - started), failures };
}

// ---------------------------------------------------------------------------------------------
// The load: holds at a fixed rate, releases where a seat comes round again

interface Change {
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

async function send(
  agent: Agent,
  api: string,
  method: 'POST' | 'DELETE',
  path: string,
  token: string,
  body?: unknown,
): Promise<{ status: string; text: string }> {
  try {
    const response = await request(`${api}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      dispatcher: agent,
      signal: AbortSignal.timeout(60_000),
    });
    return { status: String(response.statusCode), text: await response.body.text() };
  } catch (error) {
    const { code, name, message } = error as NodeJS.ErrnoException;
    return { status: `error:${code ?? name}`, text: message };
  }
}

async function until(at: number): Promise<void> {
  const wait = at - clock();
  if (wait > 0) await sleep(wait);
}

async function runLoad(options: {
  api: string;
  eventId: string;
  labels: readonly string[];
  customers: readonly http.BenchCustomer[];
  rate: number;
  seconds: number;
}) {
  const { api, eventId, labels, customers, rate } = options;
  const agent = new Agent({ connections: LOAD_CONNECTIONS, keepAliveTimeout: 60_000 });
  const count = Math.max(1, Math.round(rate * options.seconds));
  const interval = 1000 / rate;
  const seats = labels.length;
  const holds: Change[] = [];
  const releases: Change[] = [];
  const released: Promise<void>[] = [];
  let delayedBySeat = 0;
  const start = clock() + 20;
  const change = (kind: Change['kind'], index: number, dueAt: number): Change => ({
    kind,
    index,
    label: labels[index % seats],
    dueAt,
    sentAt: NaN,
    answeredAt: NaN,
    status: '',
    bookingId: null,
    text: '',
  });
  const task = async (i: number, done: () => void): Promise<void> => {
    const hold = change('hold', i, start + i * interval);
    holds[i] = hold;
    try {
      await until(hold.dueAt);
      if (i >= seats) {
        const before = clock();
        await released[i - seats];
        if (clock() - before > 1) delayedBySeat += 1;
      }
      const customer = customers[i % customers.length];
      hold.sentAt = clock();
      const answer = await send(agent, api, 'POST', '/bookings', customer.token, {
        eventId,
        seatIds: [hold.label],
      });
      hold.answeredAt = clock();
      hold.status = answer.status;
      if (answer.status === '201') hold.bookingId = JSON.parse(answer.text).id ?? null;
      else hold.text = answer.text.slice(0, 300);
      if (i + seats >= count || !hold.bookingId) return;
      const release = change('release', i, start + (i + seats) * interval - RELEASE_LEAD_MS);
      releases.push(release);
      await until(release.dueAt);
      release.sentAt = clock();
      const freed = await send(agent, api, 'DELETE', `/bookings/${hold.bookingId}`, customer.token);
      release.answeredAt = clock();
      release.status = freed.status;
      release.bookingId = hold.bookingId;
      if (freed.status !== '200') release.text = freed.text.slice(0, 300);
    } finally {
      done();
    }
  };
  const tasks: Promise<void>[] = [];
  for (let i = 0; i < count; i += 1) {
    let done!: () => void;
    released[i] = new Promise<void>((resolve) => (done = resolve));
    tasks.push(task(i, done));
  }
  await cli.withTimeout(Promise.all(tasks), (options.seconds + 120) * 1000, 'the holds');
  const end = clock();
  await agent.close().catch(() => undefined);
  return { holds, releases, start, end, count, delayedBySeat };
}

// ---------------------------------------------------------------------------------------------
// Settling and the checks

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
async function settle(url: string, eventId: string, subscribers: readonly SseSubscriber[]) {
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

interface Expected {
  seats: Map<string, string>;
  sections: Record<string, number>;
}

async function expectedState(api: string, eventId: string): Promise<Expected> {
  const seats = http.expectStatus(
    await http.call<{ label: string; status: string }[]>(api, 'GET', `/events/${eventId}/seats`),
    200,
    'GET /events/{id}/seats',
  );
  const event = http.expectStatus(
    await http.call<{ sections: { name: string; available: number }[] }>(
      api,
      'GET',
      `/events/${eventId}`,
    ),
    200,
    'GET /events/{id}',
  );
  return {
    seats: new Map(seats.map((s) => [s.label, s.status])),
    sections: Object.fromEntries(event.sections.map((s) => [s.name, s.available])),
  };
}

function checkSubscribers(
  subscribers: readonly SseSubscriber[],
  cache: FrameCache,
  expected: Expected | null,
  finalSeq: number,
) {
  const wanted = new Uint8Array(cache.labels.length).fill(255);
  cache.labels.forEach((label, i) => {
    const status = expected?.seats.get(label);
    if (status !== undefined) wanted[i] = cache.statuses.code(status);
  });
  const seatListMatches = expected?.seats.size === cache.labels.length;
  let gaps = 0;
  let mismatched = 0;
  let sectionsMismatched = 0;
  let behind = 0;
  let lost = 0;
  let divergent = 0;
  const samples: string[] = [];
  const perKind = new Map<string, number>();
  const sample = (kind: string, text: string) => {
    const n = perKind.get(kind) ?? 0;
    perKind.set(kind, n + 1);
    if (n < 3) samples.push(text);
  };
  for (const [n, s] of subscribers.entries()) {
    if (s.gaps > 0) {
      gaps += 1;
      sample('gap', `subscriber ${n}: ${s.gaps} gaps (${s.gapSamples.join(', ')})`);
    }
    if (s.failures.length > 0 || s.firstSnapshotSeq < 0) {
      lost += 1;
      const why = s.failures.slice(0, 3).join('; ') || 'no snapshot';
      sample('lost', `subscriber ${n} lost: ${why}`);
    }
    if (s.divergent > 0) divergent += 1;
    if (s.seq !== finalSeq) behind += 1;
    if (!expected) continue;
    let differs = !seatListMatches || s.state.length !== wanted.length || s.unknownLabels > 0;
    for (let i = 0; !differs && i < wanted.length; i += 1) differs = s.state[i] !== wanted[i];
    if (differs) {
      mismatched += 1;
      const at = cache.labels.findIndex((_, i) => s.state[i] !== wanted[i]);
      if (at >= 0) {
        const label = cache.labels[at];
        sample(
          'mismatch',
          `subscriber ${n}: ${label} is ${cache.statuses.name(s.state[at])}, GET /seats says ` +
            `${expected.seats.get(label)} (seq ${s.seq} of ${finalSeq})`,
        );
      }
    }
    const names = new Set([...Object.keys(s.sections), ...Object.keys(expected.sections)]);
    if ([...names].some((name) => s.sections[name] !== expected.sections[name])) {
      sectionsMismatched += 1;
    }
  }
  return {
    gaps,
    mismatched: expected ? mismatched : null,
    sectionsMismatched: expected ? sectionsMismatched : null,
    behind,
    lost,
    divergent,
    samples,
  };
}

// ---------------------------------------------------------------------------------------------
// Latency: each change's answer here to each subscriber's receipt of the message carrying it

function sortedPercentile(sorted: Float32Array, p: number): number | null {
  if (sorted.length === 0) return null;
  const index = Math.ceil((p / 100) * sorted.length) - 1;
  return sorted[Math.min(sorted.length - 1, Math.max(0, index))];
}

function summarizeSorted(values: Float32Array) {
  values.sort();
  let sum = 0;
  for (const v of values) sum += v;
  return {
    n: values.length,
    p50: round(sortedPercentile(values, 50)),
    p90: round(sortedPercentile(values, 90)),
    p99: round(sortedPercentile(values, 99)),
    max: round(values.length ? values[values.length - 1] : null),
    mean: round(values.length ? sum / values.length : null),
  };
}

type LatencySummary = ReturnType<typeof summarizeSorted>;

interface MessageTime {
  seq: number;
  /** When the change's answer arrived here (for several changes, the last one). */
  t0: number;
  kind: 'hold' | 'release' | 'other';
  frame: string;
}

/** Which change each message carries, by label and order; answers each message's t0. */
function matchMessages(
  cache: FrameCache,
  holds: readonly Change[],
  releases: readonly Change[],
  fromSeq: number,
  toSeq: number,
) {
  const byLabel = (changes: readonly Change[]) => {
    const map = new Map<string, Change[]>();
    for (const c of changes) {
      if (!Number.isFinite(c.answeredAt)) continue;
      const ok = c.kind === 'hold' ? c.status === '201' : c.status === '200';
      if (ok) map.set(c.label, [...(map.get(c.label) ?? []), c]);
    }
    for (const list of map.values()) list.sort((a, b) => a.index - b.index);
    return map;
  };
  const heldBy = byLabel(holds);
  const freedBy = byLabel(releases);
  const used = new Map<string, number>();
  const messages: MessageTime[] = [];
  let neverDelivered = 0;
  let unmatched = 0;
  for (let seq = fromSeq + 1; seq <= toSeq; seq += 1) {
    const parsed = cache.seats.get(seq);
    if (!parsed) {
      neverDelivered += 1;
      continue;
    }
    let t0 = -Infinity;
    let kind: MessageTime['kind'] = 'other';
    for (const { label, status } of parsed.raw) {
      const source = status === 'held' ? heldBy : status === 'free' ? freedBy : null;
      const key = `${status} ${label}`;
      const n = used.get(key) ?? 0;
      used.set(key, n + 1);
      const matched = source?.get(label)?.[n];
      if (!matched) {
        unmatched += 1;
        continue;
      }
      t0 = Math.max(t0, matched.answeredAt);
      kind = matched.kind;
    }
    if (Number.isFinite(t0)) {
      const frame = `id: ${seq}\nevent: seats\ndata: ${parsed.text}\n\n`;
      messages.push({ seq, t0, kind, frame });
    }
  }
  return { messages, neverDelivered, unmatched };
}

/** Every (subscriber, message) pair's latency, and per message its first and last subscriber. */
function latencies(subscribers: readonly SseSubscriber[], messages: readonly MessageTime[]) {
  const out = {} as Record<
    'hold' | 'release',
    { pairs: LatencySummary; first: LatencySummary; last: LatencySummary; missing: number }
  >;
  let early = 0;
  for (const kind of ['hold', 'release'] as const) {
    const mine = messages.filter((m) => m.kind === kind);
    const pairs = new Float32Array(mine.length * subscribers.length);
    const first = new Float32Array(mine.length);
    const last = new Float32Array(mine.length);
    let n = 0;
    let missing = 0;
    let firsts = 0;
    for (const m of mine) {
      let lo = Infinity;
      let hi = -Infinity;
      for (const s of subscribers) {
        const at = s.arrivalOf(m.seq);
        if (Number.isNaN(at)) {
          missing += 1;
          continue;
        }
        const ms = at - m.t0;
        if (ms < 0) early += 1;
        pairs[n] = ms;
        n += 1;
        if (ms < lo) lo = ms;
        if (ms > hi) hi = ms;
      }
      if (Number.isFinite(lo)) {
        first[firsts] = lo;
        last[firsts] = hi;
        firsts += 1;
      }
    }
    out[kind] = {
      pairs: summarizeSorted(pairs.subarray(0, n)),
      first: summarizeSorted(first.subarray(0, firsts)),
      last: summarizeSorted(last.subarray(0, firsts)),
      missing,
    };
  }
  const all = new Float32Array(messages.length * subscribers.length);
  let n = 0;
  for (const m of messages) {
    for (const s of subscribers) {
      const at = s.arrivalOf(m.seq);
      if (!Number.isNaN(at)) all[n++] = at - m.t0;
    }
  }
  return { ...out, all: summarizeSorted(all.subarray(0, n)), arrivedBeforeAnswer: early };
}

// ---------------------------------------------------------------------------------------------
// The minimal fan-out ceiling

/**
 * A Node server that keeps every GET open as text/event-stream, sends each the snapshot first,
 * and writes every frame it is told of on stdin (one JSON line each) to all of them, what
 * arrived in one tick as one write per response. No database, no poll, no Redis.
 */
const FANOUT_SERVER = `'use strict';
const http = require('node:http');
const readline = require('node:readline');
const clients = new Set();
let snapshot = '';
let pending = '';
const flush = () => {
  const text = pending;
  pending = '';
  for (const res of clients) res.write(text);
};
const server = http.createServer((req, res) => {
  if (req.url === '/health') return res.end('ok');
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  res.write(snapshot);
  clients.add(res);
  res.on('close', () => clients.delete(res));
});
server.keepAliveTimeout = 600000;
server.requestTimeout = 0;
server.headersTimeout = 120000;
readline.createInterface({ input: process.stdin }).on('line', (line) => {
  const message = JSON.parse(line);
  if (message.snapshot !== undefined) snapshot = message.snapshot;
  else {
    if (pending === '') setImmediate(flush);
    pending += message.frame;
  }
});
server.listen(Number(process.env.PORT), '127.0.0.1');
`;

async function fanoutCeiling(options: {
  subscribers: number;
  labels: readonly string[];
  snapshotFrame: string;
  messages: readonly MessageTime[];
  windowStart: number;
}) {
  scratchDir ??= mkdtempSync(join(tmpdir(), 'seatlock-stream-bench-'));
  const entry = join(scratchDir, 'fanout-server.js');
  writeFileSync(entry, FANOUT_SERVER);
  const port = await freePort();
  const server = children.node('fan-out server', entry, { ...process.env, PORT: String(port) });
  const origin = `http://127.0.0.1:${port}`;
  const agent = subscriberAgent(options.subscribers + 16);
  let subscribers: SseSubscriber[] = [];
  try {
    const probe = async () => {
      const answer = await http.call(origin, 'GET', '/health', { timeoutMs: 1_000 });
      return answer;
    };
    await proc.waitHealthy(server, probe, 10_000);
    server.child.stdin?.write(`${JSON.stringify({ snapshot: options.snapshotFrame })}\n`);
    const cache = new FrameCache(options.labels, new StatusCodes());
    log(`ceiling: minimal fan-out, opening ${fmt(options.subscribers)} streams`);
    const opened = await openSubscribers({
      origin,
      path: '/stream',
      n: options.subscribers,
      agent,
      cache,
      expectedMessages: options.messages.length + 16,
    });
    subscribers = opened.subscribers;
    await sleep(500);
    log(`ceiling: replaying ${fmt(options.messages.length)} messages at their moments`);
    const sampling = sampler(-1, null, { [server.pid]: 'fan-out server (node)' });
    const delay = monitorEventLoopDelay({ resolution: 10 });
    delay.enable();
    await sampling.start();
    const start = clock() + 20;
    const sent: MessageTime[] = [];
    for (const m of options.messages) {
      await until(start + (m.t0 - options.windowStart));
      const t0 = clock();
      server.child.stdin?.write(`${JSON.stringify({ frame: m.frame })}\n`);
      sent.push({ ...m, t0 });
    }
    const lastSeq = options.messages.at(-1)?.seq ?? 0;
    const deadline = clock() + SETTLE_TIMEOUT_MS;
    while (clock() < deadline && subscribers.some((s) => s.seq < lastSeq)) await sleep(50);
    const cpu = await sampling.stop();
    delay.disable();
    const latency = latencies(subscribers, sent);
    const lost = subscribers.filter((s) => s.failures.length > 0).length + opened.failures.length;
    return {
      subscribers: options.subscribers,
      openMs: opened.openMs,
      lost,
      behind: subscribers.filter((s) => s.seq < lastSeq).length,
      latency,
      cpu,
      eventLoopDelayMs: loopDelay(delay),
      skipped: null as string | null,
    };
  } finally {
    for (const s of subscribers) s.close();
    await agent.destroy().catch(() => undefined);
    await children.stop(server);
  }
}

function loopDelay(h: ReturnType<typeof monitorEventLoopDelay>) {
  return {
    p50: round(h.percentile(50) / 1e6),
    p99: round(h.percentile(99) / 1e6),
    max: round(h.max / 1e6),
  };
}

// ---------------------------------------------------------------------------------------------
// Redis PUBLISH ceiling

async function publishCeiling(url: string) {
  const port = new URL(url).port;
  log(`ceiling: PUBLISH on the private Redis, ${REDIS_BENCHMARK_CLIENTS} clients`);
  try {
    const { code, output } = await children.runToEnd(
      'redis-benchmark',
      [
        'redis-benchmark',
        ...['-h', '127.0.0.1', '-p', port, '-c', String(REDIS_BENCHMARK_CLIENTS)],
        ...[
          '-n',
          String(REDIS_BENCHMARK_REQUESTS),
          '--csv',
          'PUBLISH',
          'bench:channel',
          'x'.repeat(160),
        ],
      ],
      process.env,
      120_000,
    );
    const line = output.split('\n').find((l) => l.startsWith('"PUBLISH'));
    const cells = line?.split(',').map((cell) => Number(cell.replace(/"/g, '')));
    if (code === 0 && cells && Number.isFinite(cells[1])) {
      return { perSecond: round(cells[1]), skipped: null as string | null };
    }
    return { perSecond: null, skipped: `redis-benchmark exit ${code}` };
  } catch (error) {
    return { perSecond: null, skipped: `redis-benchmark: ${(error as Error).message}` };
  }
}

// ---------------------------------------------------------------------------------------------
// The run

async function measure(options: Options) {
  log(`fresh database ${DATABASE}, a private redis-server`);
  const benchUrl = await cli.withTimeout(pg.recreateDatabase(DATABASE), 30_000, 'recreating it');
  privateRedis = await RedisServer.start();
  const redisUrl = privateRedis.url;
  const redis = redisPid(privateRedis.port);
  const adminToken = `bench-admin-${randomBytes(16).toString('hex')}`;
  const api = await startApi(benchUrl, redisUrl, adminToken);
  const apiDied = () =>
    api.hasExited
      ? {
          code: api.child.exitCode,
          signal: api.child.signalCode,
          tail: api.tail.slice(-15),
        }
      : null;
  let streamAgent: Agent | undefined;
  let subscribers: SseSubscriber[] = [];
  try {
    const event = await http.createEvent(api.url, adminToken, 'Stream', ROWS, SEATS_PER_ROW);
    log(`registering ${CUSTOMERS} customers, warming caches`);
    const customers = await http.registerCustomers(
      api.url,
      CUSTOMERS,
      randomBytes(4).toString('hex'),
    );
    await http.warmCaches(api.url, customers, [event]);
    const warm = await http.createEvent(api.url, adminToken, 'Warm-up', 1, 4);
    http.expectStatus(
      await http.call(api.url, 'POST', '/bookings', {
        token: customers[0].token,
        body: { eventId: warm.id, seatIds: [warm.labels[0]] },
      }),
      201,
      'the warm-up hold',
    );
    const rssBefore = rssNow(api.pid);
    const cache = new FrameCache(event.labels, new StatusCodes());
    const expectedChanges = Math.round(options.rate * options.seconds) * 2 + 64;
    const rssDuring = rssWatcher(api.pid);
    const heapDuring = heapWatcher(api.url, clock());
    const queues = socketQueueWatcher(Number(new URL(api.url).port), clock());
    const logBefore = api.snapshot();

    // 1. The subscribers, each to its snapshot.
    streamAgent = subscriberAgent(options.subscribers + 16);
    log(`opening ${fmt(options.subscribers)} streams, ${OPEN_CONCURRENCY} at a time`);
    const opened = await openSubscribers({
      origin: api.url,
      path: `/events/${event.id}/seats/stream`,
      n: options.subscribers,
      agent: streamAgent,
      cache,
      expectedMessages: expectedChanges,
    });
    subscribers = opened.subscribers;
    const snapshotSeqs = [...new Set(subscribers.map((s) => s.firstSnapshotSeq))];
    const baseSeq = Math.min(...subscribers.map((s) => s.firstSnapshotSeq).filter((q) => q >= 0));
    await sleep(1_000);
    const rssOpen = rssNow(api.pid);
    log(`${fmt(subscribers.length - opened.failures.length)} streams open in ${opened.openMs} ms`);

    // 2. The holds, with CPU, the API's memory and this process's event-loop delay watched.
    const cpu = sampler(api.pid, redis);
    const delay = monitorEventLoopDelay({ resolution: 10 });
    const bytesBefore = subscribers.reduce((sum, s) => sum + s.bytes, 0);
    delay.enable();
    await cpu.start();
    log(`holds: ${options.rate}/s for ${options.seconds} s`);
    const load = await runLoad({
      api: api.url,
      eventId: event.id,
      labels: event.labels,
      customers,
      rate: options.rate,
      seconds: options.seconds,
    });
    const cpuReport = await cpu.stop();
    delay.disable();
    const bytesWindow = subscribers.reduce((sum, s) => sum + s.bytes, 0) - bytesBefore;

    // 3. Settle and check.
    log('settling');
    const settled = await settle(benchUrl, event.id, subscribers);
    const rssMaxDuring = rssDuring.stop();
    const heap = await heapDuring.stop();
    const socketQueues = queues.stop();
    const peakAfterStream = mib(memoryStatus(api.pid)?.peak);
    const died = apiDied();
    const expected = died ? null : await expectedState(api.url, event.id);
    const checks = checkSubscribers(subscribers, cache, expected, settled.seq);
    const frames = died
      ? null
      : {
          seats: await http.metricValue(api.url, 'seatlock_stream_frames_total', { kind: 'seats' }),
          snapshot: await http.metricValue(api.url, 'seatlock_stream_frames_total', {
            kind: 'snapshot',
          }),
          stale: await http.metricValue(api.url, 'seatlock_stream_frames_total', { kind: 'stale' }),
        };
    const apiLog = api.logSince(logBefore);
    const match = matchMessages(cache, load.holds, load.releases, baseSeq, settled.seq);
    const latency = latencies(subscribers, match.messages);
    const perSubscriber = subscribers.map((s) => s.seatsMessages);
    const first = cache.firstSnapshot;
    const snapshotFrame = first ? `id: ${first.seq}\nevent: snapshot\ndata: ${first.text}\n\n` : '';
    const tally = {
      stale: subscribers.reduce((sum, s) => sum + s.stale, 0),
      pings: subscribers.reduce((sum, s) => sum + s.pings, 0),
      reconnects: subscribers.reduce((sum, s) => sum + s.reconnects, 0),
      resnapshots: subscribers.reduce((sum, s) => sum + Math.max(0, s.snapshots - 1), 0),
      duplicates: subscribers.reduce((sum, s) => sum + s.duplicates, 0),
      otherFrames: subscribers.reduce((sum, s) => sum + s.otherFrames, 0),
      divergentFrames: subscribers.reduce((sum, s) => sum + s.divergent, 0),
      messagesMin: Math.min(...perSubscriber),
      messagesMax: Math.max(...perSubscriber),
      bytesTotal: subscribers.reduce((sum, s) => sum + s.bytes, 0),
    };

    // Close the streams: the polling windows run on the same server, without them.
    for (const s of subscribers) s.close();
    await streamAgent.destroy().catch(() => undefined);
    streamAgent = undefined;
    await sleep(1_000);
    const rssAfterClose = died ? null : rssNow(api.pid);

    // 6. The polling alternative and the framework floor: the same server, or a fresh one on
    // the same database when the first died.
    let seatsWindow: LoadResult | null = null;
    let liveWindow: LoadResult | null = null;
    let seatsBytes: number | null = null;
    let pollApi = api;
    if (apiDied()) {
      log('the API died: a fresh one (same database) for the polling windows');
      pollApi = await startApi(benchUrl, redisUrl, adminToken);
      http.expectStatus(
        await http.call(pollApi.url, 'GET', `/events/${event.id}/seats`),
        200,
        'GET seats (fresh API)',
      );
    }
    {
      const api = pollApi;
      const body = await http.call(api.url, 'GET', `/events/${event.id}/seats`);
      seatsBytes = Buffer.byteLength(body.text);
      log(
        `GET /events/{id}/seats, ${POLL_CONNECTIONS} connections, 2 s + ${options.pollSeconds} s`,
      );
      seatsWindow = await loadWindow({
        url: api.url,
        connections: POLL_CONNECTIONS,
        seconds: options.pollSeconds,
        warmupSeconds: 2,
        expected: 200,
        next: () => ({ method: 'GET', path: `/events/${event.id}/seats` }),
        sampler: sampler(api.pid, redis),
      });
      log(`GET /health/live, ${POLL_CONNECTIONS} connections, 1 s + ${options.liveSeconds} s`);
      liveWindow = await loadWindow({
        url: api.url,
        connections: POLL_CONNECTIONS,
        seconds: options.liveSeconds,
        warmupSeconds: 1,
        expected: 200,
        next: () => ({ method: 'GET', path: '/health/live' }),
        sampler: sampler(api.pid, redis),
      });
    }
    const died2 = apiDied();
    const peakRss = died ? null : mib(memoryStatus(api.pid)?.peak);
    if (pollApi !== api) await children.stop(pollApi);
    await children.stop(api);

    // 7. Ceilings, the API stopped.
    const windowStart = load.start;
    const fanout =
      options.fanoutCeiling && match.messages.length > 0 && snapshotFrame
        ? await fanoutCeiling({
            subscribers: options.subscribers,
            labels: event.labels,
            snapshotFrame,
            messages: match.messages,
            windowStart,
          })
        : null;
    const publish = await publishCeiling(redisUrl);

    return {
      eventId: event.id,
      open: {
        openMs: opened.openMs,
        failures: opened.failures.slice(0, 10),
        failed: opened.failures.length,
        snapshotSeqs,
        baseSeq,
      },
      load,
      settled,
      checks,
      frames,
      latency,
      match: {
        neverDelivered: match.neverDelivered,
        unmatched: match.unmatched,
        messages: match.messages.length,
      },
      tally,
      bytesWindow,
      cpu: cpuReport,
      eventLoopDelayMs: loopDelay(delay),
      rss: {
        before: rssBefore,
        open: rssOpen,
        maxDuring: rssMaxDuring,
        peakAfterStream,
        afterClose: rssAfterClose,
        peak: peakRss,
      },
      apiLog,
      died: died ?? died2,
      pollOnFreshApi: pollApi !== api,
      heap,
      socketQueues,
      seatsBytes,
      seatsWindow,
      liveWindow,
      fanout,
      publish,
    };
  } finally {
    for (const s of subscribers) s.close();
    await streamAgent?.destroy().catch(() => undefined);
    if (!api.hasExited) await children.stop(api);
  }
}

// ---------------------------------------------------------------------------------------------
// The report

type Measured = Awaited<ReturnType<typeof measure>>;

function cores(report: CpuReport | null | undefined, group: string): number | null {
  return report?.groups[group]?.cores ?? null;
}

function postgresCores(report: CpuReport | null | undefined): number | null {
  if (!report) return null;
  const a = report.groups['PostgreSQL: bench database']?.cores ?? 0;
  const b = report.groups['PostgreSQL: server']?.cores ?? 0;
  return round(a + b, 2);
}

function maxOf(values: (number | null)[]): number | null {
  const known = values.filter((v): v is number => v !== null);
  return known.length ? Math.max(...known) : null;
}

function summarize(options: Options, m: Measured) {
  const holdsOk = m.load.holds.filter((h) => h.status === '201').length;
  const releasesOk = m.load.releases.filter((r) => r.status === '200').length;
  const statuses: Record<string, number> = {};
  const refusalSamples: Record<string, string> = {};
  for (const c of [...m.load.holds, ...m.load.releases]) {
    const key = `${c.kind} ${c.status}`;
    statuses[key] = (statuses[key] ?? 0) + 1;
    if (c.text) refusalSamples[key] ??= c.text;
  }
  const sent = m.load.holds.map((h) => h.sentAt).filter(Number.isFinite);
  const sendSpanS = sent.length > 1 ? (Math.max(...sent) - Math.min(...sent)) / 1000 : null;
  const holdRate = sendSpanS ? round((sent.length - 1) / sendSpanS, 1) : null;
  const windowS = (m.load.end - m.load.start) / 1000;
  const answerMs = m.load.holds
    .filter((h) => h.status === '201')
    .map((h) => h.answeredAt - h.sentAt)
    .sort((a, b) => a - b);
  const holdAnswer = summarizeSorted(Float32Array.from(answerMs));
  const expectedMessages = holdsOk + releasesOk;
  const streamMessages = m.settled.seq - m.open.baseSeq;
  const c = m.checks;
  const opened = options.subscribers - m.open.failed;
  const apiCores = cores(m.cpu, 'API (node)');

  // The polling alternative.
  const seatsRate = m.seatsWindow?.perSecond ?? null;
  const seatsApiCores = cores(m.seatsWindow?.cpu, 'API (node)');
  const seatsApiCpuSeconds = m.seatsWindow?.cpu?.groups['API (node)']?.cpuSeconds ?? null;
  const cpuMsPerPoll =
    seatsApiCpuSeconds !== null && m.seatsWindow?.ok
      ? round((seatsApiCpuSeconds * 1000) / m.seatsWindow.ok, 3)
      : null;
  const liveRate = m.liveWindow?.perSecond ?? null;
  const p50 = m.latency.hold.pairs.p50;
  const pollAt = (intervalMs: number | null) => {
    if (intervalMs === null || intervalMs <= 0) return null;
    const perSecond = round((options.subscribers * 1000) / intervalMs, 0);
    if (perSecond === null) return null;
    return {
      intervalMs: round(intervalMs, 1),
      requestsPerSecond: perSecond,
      apiInstances: seatsRate ? round(perSecond / seatsRate, 1) : null,
      apiCores: cpuMsPerPoll === null ? null : round((perSecond * cpuMsPerPoll) / 1000, 1),
      bytesPerSecond: m.seatsBytes === null ? null : Math.round(perSecond * m.seatsBytes),
    };
  };
  const polling = {
    atOneSecond: pollAt(1000),
    atStreamP50: pollAt(p50 !== null ? Math.max(p50, 1) : null),
  };
  const streamBytesPerSecond = windowS > 0 ? Math.round(m.bytesWindow / windowS) : null;
  const publishedPerSecond = windowS > 0 ? round(streamMessages / windowS, 1) : null;

  const summary = {
    subscribers: options.subscribers,
    opened,
    openMs: m.open.openMs,
    subscribersWithGap: c?.gaps ?? null,
    subscribersMismatched: c?.mismatched ?? null,
    subscribersSectionsMismatched: c?.sectionsMismatched ?? null,
    subscribersLost: c?.lost ?? null,
    subscribersBehindAtEnd: c?.behind ?? null,
    subscribersDivergent: c?.divergent ?? null,
    staleFrames: m.tally.stale,
    reconnects: m.tally.reconnects,
    resnapshots: m.tally.resnapshots,
    duplicates: m.tally.duplicates,
    messagesPerSubscriber: { min: m.tally.messagesMin, max: m.tally.messagesMax },
    streamMessages,
    expectedMessages,
    holds: m.load.count,
    holdsOk,
    releases: m.load.releases.length,
    releasesOk,
    holdsDelayedBySeat: m.load.delayedBySeat,
    holdRate,
    holdAnswerMs: holdAnswer,
    latencyMs: {
      hold: m.latency.hold,
      release: m.latency.release,
      all: m.latency.all,
      arrivedBeforeAnswer: m.latency.arrivedBeforeAnswer,
    },
    apiCores,
    benchCores: cores(m.cpu, 'bench: subscribers + load (this node)'),
    postgresCores: postgresCores(m.cpu),
    redisCores: cores(m.cpu, 'redis-server (private)'),
    machineCores: m.cpu.machineCores,
    otherCores: m.cpu.otherCores,
    benchEventLoopDelayMs: m.eventLoopDelayMs,
    rssMB: m.rss,
    apiHeapUsedMB: { max: m.heap.maxHeapUsedMB, last: m.heap.lastHeapUsedMB },
    apiEventLoopLagP99MaxMs: maxOf(m.heap.samples.map((x) => x.lagP99Ms)),
    pollOnFreshApi: m.pollOnFreshApi,
    socketQueuesKB: {
      serverTxMax: m.socketQueues.maxServerTxKB,
      clientRxMax: m.socketQueues.maxClientRxKB,
    },
    streamBytesPerSecond,
    publishedPerSecond,
    seatsBytes: m.seatsBytes,
    seatsPerSecond: seatsRate,
    seatsApiCores,
    cpuMsPerPoll,
    seatsP50Ms: m.seatsWindow?.latencyMs.p50 ?? null,
    livePerSecond: liveRate,
    seatsVsLive: ratio(seatsRate, liveRate),
    polling,
    fanout: m.fanout && {
      hold: m.fanout.latency.hold,
      release: m.fanout.latency.release,
      all: m.fanout.latency.all,
      lost: m.fanout.lost,
      behind: m.fanout.behind,
      serverCores: cores(m.fanout.cpu, 'fan-out server (node)'),
      benchCores: cores(m.fanout.cpu, 'bench: subscribers + load (this node)'),
      machineCores: m.fanout.cpu.machineCores,
      benchEventLoopDelayMs: m.fanout.eventLoopDelayMs,
      openMs: m.fanout.openMs,
    },
    redisPublishPerSecond: m.publish.perSecond,
    apiDied: m.died,
  };
  const notes: string[] = [];
  if (m.died) {
    notes.push(
      `the API died (code ${m.died.code}, signal ${m.died.signal}): ${m.died.tail.join(' | ')}`,
    );
  }
  if (m.died) {
    const trail = m.heap.samples
      .filter((x) => x.heapUsedMB !== null)
      .slice(-12)
      .map((x) => `${x.s}s ${x.heapUsedMB}`)
      .join(', ');
    notes.push(`API heap used (MB, its /metrics) in the last samples before it died: ${trail}`);
  }
  if (m.pollOnFreshApi) notes.push('the polling windows ran on a fresh API (the first died)');
  for (const text of c?.samples ?? []) notes.push(text);
  if (m.open.failed > 0) notes.push(`${m.open.failed} streams never opened: ${m.open.failures[0]}`);
  if (m.open.snapshotSeqs.length > 1) {
    notes.push(`first snapshots at different seqs: ${m.open.snapshotSeqs.join(', ')}`);
  }
  if (streamMessages !== expectedMessages) {
    notes.push(
      `${streamMessages} messages numbered for ${expectedMessages} successful holds and releases`,
    );
  }
  if (m.match.neverDelivered > 0) {
    notes.push(`${m.match.neverDelivered} seqs reached no subscriber as a seats message`);
  }
  if (m.match.unmatched > 0) notes.push(`${m.match.unmatched} changes matched no hold or release`);
  for (const [key, text] of Object.entries(refusalSamples)) {
    notes.push(`${statuses[key]} x ${key}: ${text}`);
  }
  if (m.load.delayedBySeat > 0) {
    notes.push(`${m.load.delayedBySeat} holds waited past their moment for their seat's release`);
  }
  const missing = m.latency.hold.missing + m.latency.release.missing;
  if (missing > 0) {
    notes.push(`${fmt(missing)} (subscriber, change) pairs never arrived as a seats message`);
  }
  if (m.latency.arrivedBeforeAnswer > 0) {
    notes.push(
      `${fmt(m.latency.arrivedBeforeAnswer)} pairs arrived before the change's answer did ` +
        '(counted with negative latency)',
    );
  }
  if (m.tally.otherFrames > 0) notes.push(`${m.tally.otherFrames} frames of an unknown event`);
  if ((c?.behind ?? 0) > 0) notes.push(`${c?.behind} subscribers not at the last seq at the end`);
  if (m.apiLog.levels.error + m.apiLog.levels.fatal + m.apiLog.levels.warn > 0) {
    notes.push(`API log while streaming: ${JSON.stringify(m.apiLog.messages)}`);
  }
  if (m.frames && m.frames.seats < opened * streamMessages) {
    notes.push(
      `the API counted ${fmt(m.frames.seats)} seats frames for ${fmt(opened)} x ${streamMessages}`,
    );
  }
  if (m.fanout && (m.fanout.lost > 0 || m.fanout.behind > 0)) {
    notes.push(`fan-out ceiling: ${m.fanout.lost} lost, ${m.fanout.behind} behind at the end`);
  }
  if (m.publish.skipped) notes.push(`no PUBLISH ceiling: ${m.publish.skipped}`);
  const ok =
    !m.died &&
    c !== null &&
    opened === options.subscribers &&
    c.gaps === 0 &&
    c.mismatched === 0 &&
    c.sectionsMismatched === 0 &&
    c.lost === 0 &&
    c.divergent === 0 &&
    m.tally.divergentFrames === 0;
  return { ok, summary, statuses, notes };
}

type Report = ReturnType<typeof summarize>;

/** The old-space cap npm start gives the API, as text. */
function heapCap(): string {
  const option = proc.apiNodeOptions().find((o) => o.startsWith('--max-old-space-size='));
  return option ? `old space capped at ${option.split('=')[1]} MB` : 'no heap cap';
}

function printReport(options: Options, m: Measured, r: Report): void {
  const s = r.summary;
  const ms = (v: number | null | undefined) => fmt(v, 1);
  const trio = (l: { p50: number | null; p99: number | null; max: number | null } | undefined) =>
    l ? `${ms(l.p50)} / ${ms(l.p99)} / ${ms(l.max)}` : '-';
  const perSecond = (v: number | null | undefined) =>
    v === null || v === undefined ? '-' : `${fmt(v)}/s`;
  const mbps = (v: number | null | undefined) =>
    v === null || v === undefined ? '-' : `${fmt(v / 1e6, 1)} MB/s`;
  const f = s.fanout;
  const rows: TableRow[] = [
    {
      figure: 'subscribers open (snapshot received) / time to open all',
      measured: `${fmt(s.opened)} / ${fmt(s.openMs)} ms`,
      goal: fmt(s.subscribers),
    },
    { figure: 'subscribers with a gap in seq', measured: fmt(s.subscribersWithGap), goal: '0' },
    {
      figure: 'subscribers whose snapshot + changes != GET /seats at the end',
      measured: fmt(s.subscribersMismatched),
      goal: '0',
    },
    {
      figure: '  whose last sections != GET /events/{id} availability',
      measured: fmt(s.subscribersSectionsMismatched),
      goal: '0',
    },
    {
      figure: 'subscribers lost (connection error, stream ended, no snapshot)',
      measured: fmt(s.subscribersLost),
      goal: '0',
    },
    {
      figure: 'reconnects / stale frames / new snapshots / duplicates',
      measured: `${fmt(s.reconnects)} / ${fmt(s.staleFrames)} / ${fmt(s.resnapshots)} / ${fmt(s.duplicates)}`,
    },
    {
      figure: 'seats messages per subscriber (min / max) vs numbered',
      measured: `${fmt(s.messagesPerSubscriber.min)} / ${fmt(s.messagesPerSubscriber.max)}`,
      ceiling: fmt(s.streamMessages),
    },
    {
      figure: 'holds 201 of sent / releases 200 of sent / hold rate',
      measured:
        `${fmt(s.holdsOk)} / ${fmt(s.holds)}, ${fmt(s.releasesOk)} / ${fmt(s.releases)}, ` +
        perSecond(s.holdRate),
    },
    { figure: '  hold answer p50 / p99 / max ms', measured: trio(s.holdAnswerMs) },
    { figure: '-' },
    {
      figure: 'commit-to-client ms: hold 201 -> subscriber, p50 / p99 / max',
      measured: trio(s.latencyMs.hold.pairs),
      ceiling: f ? trio(f.hold.pairs) : '-',
      ratio: ratio(f?.hold.pairs.p50, s.latencyMs.hold.pairs.p50),
    },
    {
      figure: '  to the first subscriber per change',
      measured: trio(s.latencyMs.hold.first),
      ceiling: f ? trio(f.hold.first) : '-',
    },
    {
      figure: '  to the last subscriber per change',
      measured: trio(s.latencyMs.hold.last),
      ceiling: f ? trio(f.hold.last) : '-',
      ratio: ratio(f?.hold.last.p50, s.latencyMs.hold.last.p50),
    },
    {
      figure: '  release 200 -> subscriber, p50 / p99 / max',
      measured: trio(s.latencyMs.release.pairs),
      ceiling: f ? trio(f.release.pairs) : '-',
    },
    {
      figure: '  (subscriber, change) pairs measured / arrived before the answer',
      measured: `${fmt(s.latencyMs.all.n)} / ${fmt(s.latencyMs.arrivedBeforeAnswer)}`,
    },
    {
      figure: '  this process event-loop delay p99 / max ms (stamps both ends)',
      measured: `${ms(s.benchEventLoopDelayMs.p99)} / ${ms(s.benchEventLoopDelayMs.max)}`,
      ceiling: f ? `${ms(f.benchEventLoopDelayMs.p99)} / ${ms(f.benchEventLoopDelayMs.max)}` : '',
    },
    { figure: '-' },
    {
      figure: 'API CPU in the window (cores) / machine busy (of 2)',
      measured: `${fmt(s.apiCores, 2)} / ${fmt(s.machineCores, 2)}`,
      ceiling: f ? `${fmt(f.serverCores, 2)} / ${fmt(f.machineCores, 2)}` : '',
    },
    {
      figure: '  bench (subscribers + load) / PostgreSQL / redis / other cores',
      measured:
        `${fmt(s.benchCores, 2)} / ${fmt(s.postgresCores, 2)} / ${fmt(s.redisCores, 2)} / ` +
        fmt(s.otherCores, 2),
      ceiling: f ? `bench ${fmt(f.benchCores, 2)}` : '',
    },
    {
      figure: 'API RSS MB: before / streams open / max during / after close',
      measured:
        `${fmt(s.rssMB.before, 1)} / ${fmt(s.rssMB.open, 1)} / ${fmt(s.rssMB.maxDuring, 1)} / ` +
        fmt(s.rssMB.afterClose, 1),
    },
    { figure: 'API peak RSS (VmHWM) MB', measured: fmt(s.rssMB.peak, 1), goal: '<= 250' },
    {
      figure: `API heap used MB, max / last (its /metrics, every 0.5 s; ${heapCap()})`,
      measured: `${fmt(s.apiHeapUsedMB.max, 1)} / ${fmt(s.apiHeapUsedMB.last, 1)}`,
    },
    {
      figure: 'kernel queues of the streams, highest total KB: API unsent / bench unread',
      measured: `${fmt(s.socketQueuesKB.serverTxMax, 1)} / ${fmt(s.socketQueuesKB.clientRxMax, 1)}`,
    },
    {
      figure: '  API event-loop lag p99, highest sample ms',
      measured: s.apiEventLoopLagP99MaxMs === null ? '-' : fmt(s.apiEventLoopLagP99MaxMs, 1),
    },
    {
      figure: 'stream: bytes/s to all subscribers / messages/s published',
      measured: `${mbps(s.streamBytesPerSecond)} / ${perSecond(s.publishedPerSecond)}`,
    },
    {
      figure: '  Redis PUBLISH raw (redis-benchmark) vs messages/s published',
      measured: perSecond(s.publishedPerSecond),
      ceiling: perSecond(s.redisPublishPerSecond),
      ratio: ratio(s.publishedPerSecond, s.redisPublishPerSecond),
    },
    { figure: '-' },
    {
      figure: `GET /events/{id}/seats req/s (${POLL_CONNECTIONS} conn.) vs /health/live (same server)`,
      measured: perSecond(s.seatsPerSecond),
      ceiling: perSecond(s.livePerSecond),
      ratio: s.seatsVsLive,
    },
    {
      figure: '  API cores in that window / API CPU ms per GET seats / body bytes',
      measured: `${fmt(s.seatsApiCores, 2)} / ${fmt(s.cpuMsPerPoll, 2)} / ${fmt(s.seatsBytes)}`,
    },
  ];
  for (const [name, p] of [
    ['every 1 s', s.polling.atOneSecond],
    ['every stream p50', s.polling.atStreamP50],
  ] as const) {
    if (!p) continue;
    rows.push({
      figure: `${fmt(s.subscribers)} pollers ${name} (${fmt(p.intervalMs, 1)} ms): req/s / API instances / API cores`,
      measured: `${perSecond(p.requestsPerSecond)} / ${fmt(p.apiInstances, 1)} / ${fmt(p.apiCores, 1)}`,
      ceiling: `stream: 1 / ${fmt(s.apiCores, 2)}`,
    });
    rows.push({
      figure: '  bytes/s polling vs the stream',
      measured: mbps(p.bytesPerSecond),
      ceiling: mbps(s.streamBytesPerSecond),
    });
  }
  const out = [
    '',
    `Seat stream: ${fmt(s.subscribers)} subscribers on one instance, ${fmt(SEATS)} seats ` +
      `(${ROWS} x ${SEATS_PER_ROW}); holds ${fmt(options.rate)}/s for ${options.seconds} s, ` +
      `each seat released 1 s before it comes round again; STREAM_POLL_MS ${STREAM_POLL_MS}`,
    renderTable(rows),
    'ceiling of the latency rows: the minimal fan-out (a Node process writes each frame it is told ' +
      'of to the same number of open responses; no database, no poll, no Redis), the same frames ' +
      'replayed at the same moments, the API stopped; ratio = ceiling p50 / measured p50',
    ...r.notes.map((note) => `! ${note}`),
    r.ok ? 'OK' : 'FAILED',
  ];
  process.stdout.write(`${out.join('\n')}\n`);
  void m;
}

async function cleanUp(): Promise<void> {
  await pg.dropDatabase(DATABASE).catch(() => undefined);
  await privateRedis?.stop();
  privateRedis = null;
  if (scratchDir) rmSync(scratchDir, { recursive: true, force: true });
  scratchDir = null;
}

async function main(): Promise<number> {
  const options = readOptions();
  if (!existsSync(proc.API_MAIN)) throw new cli.BenchError('no dist/: run npm run build first');
  const limit = openFileLimit();
  if (limit !== null && limit < options.subscribers + 1_000) {
    throw new cli.BenchError(
      `the open-file limit is ${limit}: ${options.subscribers} streams need about ` +
        `${options.subscribers + 1_000} (ulimit -n ${options.subscribers + 1_000})`,
    );
  }
  process.on('exit', () => privateRedis?.killSync());
  let measured: Measured;
  try {
    measured = await measure(options);
  } finally {
    await cli
      .withTimeout(cleanUp(), 30_000, 'cleaning up')
      .catch((error: Error) => log(error.message));
  }
  const report = summarize(options, measured);
  printReport(options, measured, report);
  if (options.json) {
    printJson({
      benchmark: 'stream',
      ok: report.ok,
      subscribers: options.subscribers,
      rate: options.rate,
      seconds: options.seconds,
      seats: SEATS,
      streamPollMs: STREAM_POLL_MS,
      summary: report.summary,
      details: {
        statuses: report.statuses,
        open: measured.open,
        settled: measured.settled,
        checks: measured.checks,
        framesCountedByApi: measured.frames,
        tally: measured.tally,
        match: measured.match,
        cpu: measured.cpu,
        seatsWindow: measured.seatsWindow,
        liveWindow: measured.liveWindow,
        fanout: measured.fanout && {
          cpu: measured.fanout.cpu,
          latency: measured.fanout.latency,
          openMs: measured.fanout.openMs,
        },
        publish: measured.publish,
        apiLog: measured.apiLog,
        apiHeapSamples: measured.heap.samples,
        socketQueueSamples: measured.socketQueues.samples,
        died: measured.died,
      },
      notes: report.notes,
    });
  }
  return report.ok ? 0 : 1;
}

cli.runBenchmarkMain({
  benchmark: 'stream',
  main,
  children,
  totalMs: 15 * 60_000,
  cleanUp,
});
