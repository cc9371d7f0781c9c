/*
 * Best available under a stampede (issue 12): N customers ask for the best two seats at once.
 *
 *   npm run bench:best -- [--contenders 1000] [--cold] [--pgbench-seconds 10] [--no-pgbench]
 *                         [--json]
 *
 * Starts the built API (npm start's node options, rate limits off) on a fresh database of its own,
 * behind a PgCountingProxy, with a redis-server of its own unless REDIS_URL is set, so that INFO
 * commandstats counts this API alone. Creates one event of 1,000 seats (one section, 20 rows x 50)
 * with orphanPolicy "strict" and N customers; unless --cold, warms the token and seat-map caches,
 * holds two seats of a warm-up event (the lock scripts cached in Redis) and opens every connection.
 * Then it fires N concurrent POST /bookings {eventId, quantity: 2}.
 * Reported: bookings, refusals by code, seats held twice (seats and bookings tables, and the 201s),
 * bookings not adjacent in one row, free seats left stranded (both row neighbours unavailable),
 * wall time, p50/p99, PostgreSQL statements and round trips on the wire in the wave (and until its
 * outbox was fanned out), Redis commands in the wave, the API's peak RSS. The ceiling, the API
 * stopped, on the same database: pgbench of the one-statement hold (the physical limit, as the
 * suite runs it: holds-windows.ts), our own seatlock_hold call replayed beside it. A seat twice, a
 * booking apart, a 5xx or a lost request is exit 1; stranded seats and refusals while pairs were
 * left are reported, not failed (docs/on-sale.md: what the orphan rule does not promise).
 * Uses DATABASE_URL's server, only the database seatlock_bench_best. See docs/benchmarks.md.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { Agent, request } from 'undici';
import { PgCountingProxy } from '../support/pg-counting-proxy';
import { freePort, RedisServer } from '../support/redis-server';
import * as http from '../support/bench/bench-http';
import * as pg from '../support/bench/bench-postgres';
import * as proc from '../support/bench/child-processes';
import * as cli from '../support/bench/cli';
import { CpuSampler, memoryStatus } from '../support/bench/proc-stats';
import { latencySummary, ratio, round, subtract } from '../support/bench/stats';
import { fmt, printJson, renderTable, type TableRow } from '../support/bench/table';
import { bestCeiling, type CeilingRun, holdCeilings } from './holds-windows';

const ROWS = 20;
const SEATS_PER_ROW = 50;
const SEATS = ROWS * SEATS_PER_ROW;
const QUANTITY = 2;
/** Bookings a full house takes: every seat sold in pairs (50 seats a row: no seat left over). */
const FULL_HOUSE = Math.floor(SEATS / QUANTITY);
const PRICE_CENTS = 5_000;
const DATABASE = pg.benchDatabaseName('seatlock_bench_best');
const BURST_TIMEOUT_MS = 120_000;
/** Refusals a sold-out house may answer; anything else is noted. */
const SOLD_OUT_CODES = new Set(['BOOKING.SOLD_OUT', 'BOOKING.NOT_ENOUGH_TOGETHER']);
const log = cli.logger('best');
const children = new proc.ChildProcesses(log, 10_000);
let privateRedis: RedisServer | null = null;

const USAGE = `Usage: npm run bench:best -- [--contenders N] [--cold] [--pgbench-seconds S]
                          [--no-pgbench] [--json]

  --contenders N       concurrent POST /bookings {quantity: ${QUANTITY}} (1 to 10000, default 1000)
  --cold               skip the warm-up (caches, one hold elsewhere, pre-opened connections)
  --pgbench-seconds S  seconds of each pgbench ceiling run (default 10; four runs)
  --no-pgbench         skip the pgbench ceilings
  --json               also print one JSON object as the last line of stdout`;

function readOptions() {
  const [text, flag] = [{ type: 'string' }, { type: 'boolean' }] as const;
  const values = cli.parseBenchArgs(
    {
      contenders: text,
      cold: flag,
      'pgbench-seconds': text,
      'no-pgbench': flag,
      json: flag,
    },
    USAGE,
  );
  return {
    contenders: Math.floor(cli.numberOption('contenders', values.contenders, 1000, 1, 10_000)),
    warm: values.cold !== true,
    pgbenchSeconds: cli.numberOption('pgbench-seconds', values['pgbench-seconds'], 10, 1, 600),
    pgbench: values['no-pgbench'] !== true,
    json: values.json === true,
  };
}
type Options = ReturnType<typeof readOptions>;

// ---------------------------------------------------------------------------------------------
// The stack: Redis, the proxy, the API

/** REDIS_URL when set (the suite's own server), else a redis-server of this run's own. */
async function redisFor(): Promise<{ url: string; private: boolean }> {
  if (process.env.REDIS_URL) {
    const url = pg.localRedisUrl();
    await pg.requireRedis(url);
    return { url, private: false };
  }
  privateRedis = await RedisServer.start();
  return { url: privateRedis.url, private: true };
}

async function startApi(databaseUrl: string, redisUrl: string, adminToken: string) {
  const port = await freePort();
  const env = proc.benchApiEnv({
    DATABASE_URL: databaseUrl,
    REDIS_URL: redisUrl,
    PORT: String(port),
    LOCK_MODE: 'redis',
    ADMIN_TOKEN: adminToken,
    // Holds only: a closed port keeps the API from starting a gateway simulator of its own.
    GATEWAY_URL: 'http://127.0.0.1:9',
    // The outbox's safety-net polls would count as wave traffic; NOTIFY still wakes it.
    NOTIFY_POLL_MS: '3600000',
  });
  const api = children.node('API', proc.API_MAIN, env, proc.apiNodeOptions());
  api.url = `http://127.0.0.1:${port}`;
  const probe = () => http.call(api.url, 'GET', '/health/ready', { timeoutMs: 2_000 });
  await proc.waitHealthy(api, probe, 60_000);
  return api;
}

/** One section of `rows` x `seatsPerRow` under the strict orphan policy, checked on GET /events. */
async function createEvent(
  api: string,
  adminToken: string,
  name: string,
  rows: number,
  seatsPerRow: number,
): Promise<{ id: string }> {
  const body = {
    name: `${name} ${new Date().toISOString()}`,
    startsAt: '2027-06-01T19:30:00Z',
    venue: 'Bench Arena',
    currency: 'EUR',
    orphanPolicy: 'strict',
    sections: [{ name: 'Floor', rows, seatsPerRow, priceCents: PRICE_CENTS }],
  };
  const created = http.expectStatus(
    await http.call<{ id: string; seats: unknown[] }>(api, 'POST', '/admin/events', {
      token: adminToken,
      body,
    }),
    201,
    'POST /admin/events',
  );
  if (created.seats?.length !== rows * seatsPerRow) {
    throw new cli.BenchError(`POST /admin/events answered ${created.seats?.length} seats`);
  }
  const shown = http.expectStatus(
    await http.call<{ orphanPolicy?: string }>(api, 'GET', `/events/${created.id}`),
    200,
    'GET /events/{id}',
  );
  if (shown.orphanPolicy !== 'strict') {
    throw new cli.BenchError(`the event's orphanPolicy is ${shown.orphanPolicy}, not strict`);
  }
  return { id: created.id };
}

// ---------------------------------------------------------------------------------------------
// The wave

type Shot = { status: string; ms: number; text: string };

/** One keep-alive connection per contender, opened beforehand (unless --cold). */
async function burstAgent(api: string, contenders: number, open: boolean): Promise<Agent> {
  const agent = new Agent({
    connections: contenders,
    keepAliveTimeout: BURST_TIMEOUT_MS,
    keepAliveMaxTimeout: BURST_TIMEOUT_MS,
    headersTimeout: BURST_TIMEOUT_MS,
    bodyTimeout: BURST_TIMEOUT_MS,
  });
  if (!open) return agent;
  // /health/live does not touch PostgreSQL: the wave then measures requests, not handshakes.
  const live = Array.from({ length: contenders }, () =>
    http.call(api, 'GET', '/health/live', { dispatcher: agent }),
  );
  await cli.withTimeout(Promise.all(live), 60_000, 'opening connections');
  return agent;
}

/** N requests at once: a burst, not a fixed-rate window, hence undici and not autocannon. */
async function fire(agent: Agent, api: string, eventId: string, customers: http.BenchCustomer[]) {
  const body = JSON.stringify({ eventId, quantity: QUANTITY });
  const shoot = async (customer: http.BenchCustomer): Promise<Shot> => {
    const started = performance.now();
    try {
      const response = await request(`${api}/bookings`, {
        method: 'POST',
        headers: { authorization: `Bearer ${customer.token}`, 'content-type': 'application/json' },
        body,
        dispatcher: agent,
      });
      const text = await response.body.text();
      return { status: String(response.statusCode), ms: performance.now() - started, text };
    } catch (error) {
      const { code, name, message } = error as NodeJS.ErrnoException;
      return { status: `error:${code ?? name}`, ms: performance.now() - started, text: message };
    }
  };
  const wallStart = performance.now();
  const all = Promise.all(customers.map(shoot));
  const shots = await cli.withTimeout(all, BURST_TIMEOUT_MS, 'the wave');
  return { shots, wallMs: performance.now() - wallStart };
}

type CommandCalls = { calls: number; failed: number };

/**
 * Calls per command since the server started (INFO commandstats): commands a script runs count
 * under their own names; `failed` counts errors such as an EVALSHA answered NOSCRIPT.
 */
async function commandStats(redis: Redis): Promise<Record<string, CommandCalls>> {
  const stats: Record<string, CommandCalls> = {};
  for (const line of (await redis.info('commandstats')).split('\n')) {
    const match = /^cmdstat_([^:]+):calls=(\d+).*?failed_calls=(\d+)/.exec(line.trim());
    if (match) stats[match[1]] = { calls: Number(match[2]), failed: Number(match[3]) };
  }
  return stats;
}

/** Calls per command between two INFO commandstats; our own INFO left out. */
function commandDelta(
  after: Record<string, CommandCalls>,
  before: Record<string, CommandCalls>,
): Record<string, CommandCalls> {
  const delta: Record<string, CommandCalls> = {};
  for (const [command, { calls, failed }] of Object.entries(after)) {
    const was = before[command] ?? { calls: 0, failed: 0 };
    if (calls > was.calls && command !== 'info') {
      delta[command] = { calls: calls - was.calls, failed: failed - was.failed };
    }
  }
  return delta;
}

/**
 * One best-available hold on an event of its own, by a customer of its own: the lock scripts are
 * then in Redis's script cache and the hold's code paths warm, as in a sale already running.
 */
async function warmHold(api: string, adminToken: string): Promise<void> {
  const event = await createEvent(api, adminToken, 'Warm-up', 1, 6);
  const [customer] = await http.registerCustomers(api, 1, `warm-${randomBytes(4).toString('hex')}`);
  const body = { eventId: event.id, quantity: QUANTITY };
  const answer = await http.call(api, 'POST', '/bookings', { token: customer.token, body });
  http.expectStatus(answer, 201, 'the warm-up hold');
}

const HOLD_OUTCOMES = ['held', 'conflict_redis', 'conflict_database', 'rejected'] as const;
type HoldMetrics = Record<(typeof HOLD_OUTCOMES)[number], number>;

/** seatlock_holds_total by outcome; /metrics reads PostgreSQL, so only outside counted windows. */
async function holdMetrics(api: string): Promise<HoldMetrics> {
  const metrics = {} as HoldMetrics;
  for (const outcome of HOLD_OUTCOMES) {
    metrics[outcome] = await http.metricValue(api, 'seatlock_holds_total', { outcome });
  }
  return metrics;
}

/** Waits (30 s at most) until no outbox message is pending; answers how many still are. */
async function drainOutbox(benchUrl: string): Promise<number> {
  const deadline = Date.now() + 30_000;
  return pg.withClient(benchUrl, async (client) => {
    for (;;) {
      const { rows } = await client.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM outbox_messages WHERE status = 'pending'`,
      );
      if (rows[0].n === 0 || Date.now() > deadline) return rows[0].n;
      await sleep(50);
    }
  });
}

type SeatRow = {
  label: string;
  row_name: string;
  seat_number: number;
  status: string;
  booking_id: string | null;
};
type BookingRow = { id: string; status: string; seat_labels: string[] };

/** The event's seats and bookings, read straight from PostgreSQL (not through the proxy). */
async function stored(benchUrl: string, eventId: string) {
  return pg.withClient(benchUrl, async (client) => {
    const seats = await client.query<SeatRow>(
      `SELECT label, row_name, seat_number, status, booking_id FROM seats
        WHERE event_id = $1 ORDER BY row_name, seat_number`,
      [eventId],
    );
    const bookings = await client.query<BookingRow>(
      `SELECT id, status, seat_labels FROM bookings WHERE event_id = $1`,
      [eventId],
    );
    return { seats: seats.rows, bookings: bookings.rows };
  });
}

/** From a fresh database to the API stopped and the ceilings run; answers the raw measurements. */
async function measure(options: Options) {
  log(`fresh database ${DATABASE}`);
  const benchUrl = await cli.withTimeout(pg.recreateDatabase(DATABASE), 30_000, 'recreating it');
  const redis = await redisFor();
  const target = new URL(benchUrl);
  const proxy = await PgCountingProxy.start(target.hostname, Number(target.port || 5432));
  const adminToken = `bench-admin-${randomBytes(16).toString('hex')}`;
  const stats = new Redis(redis.url, { maxRetriesPerRequest: 0, lazyConnect: true });
  let api: proc.Child | undefined;
  let agent: Agent | undefined;
  try {
    api = await startApi(proxy.urlFor(benchUrl), redis.url, adminToken);
    const event = await createEvent(api.url, adminToken, 'Best available', ROWS, SEATS_PER_ROW);
    const { contenders, warm } = options;
    log(`registering ${contenders} customers${warm ? ', warming caches' : ''}`);
    const customers = await http.registerCustomers(
      api.url,
      contenders,
      randomBytes(4).toString('hex'),
    );
    if (warm) {
      await http.warmCaches(api.url, customers, [{ id: event.id, labels: [] }]);
      await warmHold(api.url, adminToken);
    }
    agent = await burstAgent(api.url, contenders, warm);
    await stats.connect();
    const pendingBefore = await drainOutbox(benchUrl);
    const metricsBefore = await holdMetrics(api.url);
    const logBefore = api.snapshot();
    const redisBefore = await commandStats(stats);
    const wireBefore = proxy.counts();
    log(`wave: ${contenders} x POST /bookings {quantity: ${QUANTITY}}`);
    const wave = await fire(agent, api.url, event.id, customers);
    const wireWave = subtract(proxy.counts(), wireBefore);
    const redisWave = commandDelta(await commandStats(stats), redisBefore);
    const pending = await drainOutbox(benchUrl);
    const wireDrained = subtract(proxy.counts(), wireBefore);
    const metrics = subtract(await holdMetrics(api.url), metricsBefore);
    const peak = memoryStatus(api.pid)?.peak ?? null;
    const apiLog = api.logSince(logBefore);
    const rows = await stored(benchUrl, event.id);
    // Our connections first: a graceful shutdown would otherwise wait for them.
    await agent.destroy();
    agent = undefined;
    await children.stop(api);
    api = undefined;
    const ceiling = await ceilings(options, benchUrl, redis.url);
    return {
      eventId: event.id,
      redisPrivate: redis.private,
      wave,
      wire: { wave: wireWave, drained: wireDrained },
      redis: redisWave,
      pendingBefore,
      pending,
      metrics,
      // MiB (what /proc reports) to MB, the suite's unit.
      peakRssMB: peak === null ? null : round(peak * 1.048576, 1),
      apiLog,
      rows,
      ceiling,
    };
  } catch (error) {
    if (api?.tail.length) log(`last API output:\n${api.tail.join('\n')}`);
    throw error;
  } finally {
    stats.disconnect();
    await agent?.destroy().catch(() => undefined);
    if (api) await children.stop(api);
    await proxy.stop();
  }
}

/** pgbench of a hold (the suite's runs), the API stopped; a failure or no pgbench is noted. */
async function ceilings(options: Options, databaseUrl: string, redisUrl: string) {
  const none = (skipped: string) => ({ runs: [] as CeilingRun[], skipped });
  if (!options.pgbench) return none('--no-pgbench');
  if (!pg.findPgbench()) return none('no pgbench on this machine');
  try {
    const runs = await holdCeilings(children, {
      connections: 64,
      seconds: options.pgbenchSeconds,
      warmupSeconds: 0,
      redisUrl,
      databaseUrl,
      adminToken: '',
      sampler: () => new CpuSampler(() => null),
    });
    return { runs, skipped: null };
  } catch (error) {
    return none(`pgbench failed: ${(error as Error).message.split('\n')[0]}`);
  }
}

// ---------------------------------------------------------------------------------------------
// The checks and the report

type Measured = Awaited<ReturnType<typeof measure>>;

/** What the 201s said and what the seats and bookings tables hold, checked against each other. */
function checkSeats(m: Measured, answers: { seats: string[]; nextToEachOther: unknown }[]) {
  const seatByLabel = new Map(m.rows.seats.map((seat) => [seat.label, seat]));
  const live = m.rows.bookings.filter((b) => b.status === 'held' || b.status === 'confirmed');
  const liveById = new Map(live.map((booking) => [booking.id, booking]));
  const count = (labels: string[]) => {
    const seen = new Map<string, number>();
    for (const label of labels) seen.set(label, (seen.get(label) ?? 0) + 1);
    return [...seen].filter(([, n]) => n > 1).map(([label]) => label);
  };
  const twiceInBookings = count(live.flatMap((booking) => booking.seat_labels));
  const twiceInAnswers = count(answers.flatMap((answer) => answer.seats ?? []));
  // A seat and its booking must agree both ways: the seat names the booking that lists it.
  const mismatched = new Set<string>();
  for (const booking of live) {
    for (const label of booking.seat_labels) {
      if (seatByLabel.get(label)?.booking_id !== booking.id) mismatched.add(label);
    }
  }
  for (const seat of m.rows.seats) {
    if (seat.status === 'free') continue;
    const owner = seat.booking_id ? liveById.get(seat.booking_id) : undefined;
    if (!owner?.seat_labels.includes(seat.label)) mismatched.add(seat.label);
  }
  const apart = live.filter((booking) => {
    const seats = booking.seat_labels.map((label) => seatByLabel.get(label));
    if (seats.length !== QUANTITY || seats.some((seat) => !seat)) return true;
    const numbers = seats.map((seat) => seat?.seat_number ?? 0).sort((a, b) => a - b);
    const oneRow = new Set(seats.map((seat) => seat?.row_name)).size === 1;
    return !oneRow || numbers.some((n, i) => i > 0 && n !== numbers[i - 1] + 1);
  });
  const notNextToEachOther = answers.filter((answer) => answer.nextToEachOther !== true).length;
  // Per row: free seats whose two neighbours (or the row's end) are unavailable; free runs.
  const stranded: string[] = [];
  let freeLeft = 0;
  let pairsLeft = 0;
  const rows = new Map<string, SeatRow[]>();
  for (const seat of m.rows.seats)
    rows.set(seat.row_name, [...(rows.get(seat.row_name) ?? []), seat]);
  for (const seats of rows.values()) {
    const free = seats.map((seat) => seat.status === 'free');
    let run = 0;
    free.forEach((isFree, i) => {
      if (isFree) freeLeft += 1;
      if (isFree && !free[i - 1] && !free[i + 1]) stranded.push(seats[i].label);
      run = isFree ? run + 1 : 0;
      if (!free[i + 1] && run > 0) pairsLeft += Math.floor(run / QUANTITY);
    });
  }
  return {
    liveBookings: live.length,
    seatsTwice: { bookings: twiceInBookings, answers: twiceInAnswers, seatsTable: [...mismatched] },
    bookingsApart: apart.map((booking) => booking.seat_labels.join(' ')),
    notNextToEachOther,
    stranded,
    freeLeft,
    pairsLeft,
  };
}

function summarize(options: Options, m: Measured) {
  const statuses: Record<string, number> = {};
  const refusals: Record<string, number> = {};
  const samples: Record<string, string> = {};
  const answers: { seats: string[]; nextToEachOther: unknown }[] = [];
  for (const shot of m.wave.shots) {
    statuses[shot.status] = (statuses[shot.status] ?? 0) + 1;
    let body: { code?: string; seats?: string[]; nextToEachOther?: unknown } = {};
    try {
      body = JSON.parse(shot.text);
    } catch {
      // not JSON: a network error or a proxy's page; counted by its status
    }
    if (shot.status === '201') {
      answers.push({ seats: body.seats ?? [], nextToEachOther: body.nextToEachOther });
      continue;
    }
    const key = `${shot.status} ${body.code ?? '-'}`;
    refusals[key] = (refusals[key] ?? 0) + 1;
    samples[key] ??= shot.text.slice(0, 300);
  }
  const bookings = statuses['201'] ?? 0;
  const seats = checkSeats(m, answers);
  const latency = latencySummary(m.wave.shots.map((shot) => shot.ms));
  const latencyOf = (booked: boolean) =>
    latencySummary(m.wave.shots.filter((s) => (s.status === '201') === booked).map((s) => s.ms));
  const wallMs = round(m.wave.wallMs) ?? 0;
  const holdsPerSecond = wallMs > 0 ? round((bookings * 1000) / wallMs, 1) : null;
  const minimal = bestCeiling(m.ceiling.runs, 'one-statement hold');
  const own = bestCeiling(m.ceiling.runs, 'own-SQL replay');
  const fullHouseAtCeilingMs = minimal?.tps ? round((FULL_HOUSE * 1000) / minimal.tps, 1) : null;
  const per = (n: number) => (bookings > 0 ? round(n / bookings, 2) : null);
  const { evalsha = { calls: 0, failed: 0 }, eval: evalSource = { calls: 0, failed: 0 } } = m.redis;
  const redisAll = Object.values(m.redis).reduce((sum, c) => sum + c.calls, 0);
  const summary = {
    contenders: options.contenders,
    bookings,
    refusals,
    seatsTwice:
      seats.seatsTwice.bookings.length +
      seats.seatsTwice.answers.length +
      seats.seatsTwice.seatsTable.length,
    bookingsApart: seats.bookingsApart.length + seats.notNextToEachOther,
    strandedSeats: seats.stranded.length,
    freeSeatsLeft: seats.freeLeft,
    pairsLeft: seats.pairsLeft,
    wallMs,
    p50Ms: latency.p50,
    p99Ms: latency.p99,
    holdsPerSecond,
    minimalCeiling: minimal && { tps: minimal.tps, clients: minimal.clients },
    ownSqlCeiling: own && { tps: own.tps, clients: own.clients },
    vsMinimal: ratio(holdsPerSecond, minimal?.tps),
    vsOwnSql: ratio(holdsPerSecond, own?.tps),
    fullHouseAtCeilingMs,
    statements: m.wire.wave.statements,
    roundTrips: m.wire.wave.roundTrips,
    statementsPerBooking: per(m.wire.wave.statements),
    statementsWithFanOut: m.wire.drained.statements,
    statementsWithFanOutPerBooking: per(m.wire.drained.statements),
    /** Scripts sent (EVALSHA + EVAL), those EVALSHA answered NOSCRIPT, every command counted. */
    redisScriptsSent: evalsha.calls + evalSource.calls,
    redisNoscript: evalsha.failed,
    redisCommands: redisAll,
    peakRssMB: m.peakRssMB,
  };
  const anomalies = notes(m, summary, seats, samples);
  const broken = Object.keys(statuses).filter((s) => s.startsWith('error') || s.startsWith('5'));
  const ok =
    bookings > 0 &&
    summary.seatsTwice === 0 &&
    summary.bookingsApart === 0 &&
    seats.liveBookings === bookings &&
    broken.length === 0;
  const details = {
    statuses,
    latencyMs: { all: latency, booked: latencyOf(true), refused: latencyOf(false) },
    wire: m.wire,
    redisCommandsByName: m.redis,
    redisServer: m.redisPrivate
      ? 'private redis-server'
      : 'REDIS_URL (shared: counts every client)',
    holdMetrics: m.metrics,
    outboxPendingAfter: m.pending,
    seats,
    ceilings: m.ceiling,
    apiLog: m.apiLog,
    maxMs: latency.max,
  };
  return { ok, summary, details, anomalies };
}

type Summary = ReturnType<typeof summarize>['summary'];

/** What the reader should know beside the figures. */
function notes(
  m: Measured,
  s: Summary,
  seats: ReturnType<typeof checkSeats>,
  samples: Record<string, string>,
): string[] {
  const out: string[] = [];
  const { bookings: twiceB, answers: twiceA, seatsTable } = seats.seatsTwice;
  if (twiceB.length) out.push(`seats in two live bookings: ${twiceB.slice(0, 20).join(', ')}`);
  if (twiceA.length) out.push(`seats in two 201 answers: ${twiceA.slice(0, 20).join(', ')}`);
  if (seatsTable.length) {
    out.push(`seats and bookings disagree on: ${seatsTable.slice(0, 20).join(', ')}`);
  }
  if (seats.bookingsApart.length) {
    out.push(`bookings not adjacent in one row: ${seats.bookingsApart.slice(0, 10).join('; ')}`);
  }
  if (seats.notNextToEachOther) {
    out.push(`${seats.notNextToEachOther} answers with nextToEachOther other than true`);
  }
  if (seats.liveBookings !== s.bookings) {
    out.push(`${seats.liveBookings} live bookings stored for ${s.bookings} 201s`);
  }
  if (seats.stranded.length) out.push(`stranded free seats: ${seats.stranded.join(', ')}`);
  const refused = Object.values(s.refusals).reduce((sum, n) => sum + n, 0);
  if (refused > 0 && seats.pairsLeft > 0) {
    out.push(`${refused} requests refused while ${seats.pairsLeft} pairs of seats were left`);
  }
  for (const [key, text] of Object.entries(samples)) {
    const code = key.split(' ')[1];
    if (key.startsWith('409') && SOLD_OUT_CODES.has(code)) continue;
    out.push(`${s.refusals[key]} x ${key}, first body: ${text}`);
  }
  if (m.pending > 0) out.push(`${m.pending} outbox messages pending 30 s after the wave`);
  if (m.pendingBefore > 0) out.push(`${m.pendingBefore} outbox messages pending before the wave`);
  if (s.redisNoscript > 0) {
    out.push(
      `${s.redisNoscript} EVALSHA answered NOSCRIPT in the wave and were sent again as EVAL ` +
        '(the lock scripts were not in the script cache)',
    );
  }
  if (m.apiLog.levels.error + m.apiLog.levels.fatal > 0) {
    out.push(`API errors during the wave: ${JSON.stringify(m.apiLog.messages)}`);
  }
  if (m.ceiling.skipped) out.push(`no pgbench ceiling: ${m.ceiling.skipped}`);
  if (!m.redisPrivate) out.push('REDIS_URL is shared: its commandstats count every client');
  return out;
}

function printReport(options: Options, r: ReturnType<typeof summarize>): void {
  const s = r.summary;
  const perRequest = (n: number) => fmt(n / s.contenders, 2);
  const perSecond = (v: number | null | undefined) =>
    v === null || v === undefined ? '-' : `${fmt(v)}/s`;
  const at = (c: { tps: number | null; clients: number } | null) =>
    c ? `${perSecond(c.tps)} (${c.clients} cl.)` : '- (no pgbench run)';
  const refusals = Object.entries(s.refusals).map(([key, n]) => `${key}: ${fmt(n)}`);
  const rows: TableRow[] = [
    {
      figure: 'bookings (201)',
      measured: fmt(s.bookings),
      goal: `${fmt(FULL_HOUSE)} (full house)`,
    },
    ...(refusals.length ? refusals : ['-']).map((text, i) => ({
      figure: i === 0 ? 'refusals by status and code' : '',
      measured: text,
    })),
    { figure: 'seats held twice (tables and 201s)', measured: s.seatsTwice, goal: '0' },
    { figure: 'bookings not adjacent in one row', measured: s.bookingsApart, goal: '0' },
    {
      figure: 'free seats stranded (both row neighbours unavailable)',
      measured: s.strandedSeats,
      goal: '0',
    },
    { figure: 'free seats / pairs left', measured: `${s.freeSeatsLeft} / ${s.pairsLeft}` },
    { figure: 'latency p50 / p99 ms', measured: `${fmt(s.p50Ms, 1)} / ${fmt(s.p99Ms, 1)}` },
    { figure: '-' },
    {
      figure: 'holds/s in the wave vs pgbench one-statement hold (physical limit)',
      measured: perSecond(s.holdsPerSecond),
      ceiling: at(s.minimalCeiling),
      ratio: s.vsMinimal,
    },
    {
      figure: '  vs pgbench own-SQL replay (seatlock_hold, 1 seat, no orphan check)',
      ceiling: at(s.ownSqlCeiling),
      ratio: s.vsOwnSql,
    },
    ...r.details.ceilings.runs.map((run) => ({
      figure: `    pgbench ${run.script}, ${run.clients} clients`,
      ceiling: perSecond(run.tps),
    })),
    {
      figure: `  wall time of the wave vs ${fmt(FULL_HOUSE)} holds at the ceiling rate`,
      measured: `${fmt(s.wallMs, 1)} ms`,
      ceiling: s.fullHouseAtCeilingMs === null ? '-' : `${fmt(s.fullHouseAtCeilingMs, 1)} ms`,
      ratio: ratio(s.fullHouseAtCeilingMs, s.wallMs),
    },
    { figure: '-' },
    {
      figure: 'PostgreSQL statements / round trips on the wire, wave',
      measured: `${fmt(s.statements)} / ${fmt(s.roundTrips)}`,
    },
    { figure: '  statements per booking, wave', measured: fmt(s.statementsPerBooking, 2) },
    {
      figure: '  statements incl. the outbox fan-out / per booking',
      measured: `${fmt(s.statementsWithFanOut)} / ${fmt(s.statementsWithFanOutPerBooking, 2)}`,
    },
    {
      figure: 'Redis in the wave: EVALSHA + EVAL (NOSCRIPT) / all commands',
      measured: `${fmt(s.redisScriptsSent)} (${fmt(s.redisNoscript)}) / ${fmt(s.redisCommands)}`,
    },
    {
      figure: '  per request: scripts sent / all commands',
      measured: `${perRequest(s.redisScriptsSent)} / ${perRequest(s.redisCommands)}`,
    },
    { figure: '-' },
    { figure: 'API peak RSS (VmHWM) MB', measured: fmt(s.peakRssMB, 1), goal: '<= 250' },
  ];
  const warmth = options.warm ? 'warm' : 'cold';
  const out = [
    '',
    `Best available: ${fmt(s.contenders)} x POST /bookings {quantity: ${QUANTITY}} at once, ` +
      `${fmt(SEATS)} seats (${ROWS} rows x ${SEATS_PER_ROW}), orphanPolicy strict, ${warmth}`,
    renderTable(rows),
    'ceiling: pgbench holds one seat per transaction, no orphan check; ' +
      `the wave holds ${QUANTITY} under the rule`,
    ...r.anomalies.map((note) => `! ${note}`),
    r.ok ? 'OK' : 'FAILED',
  ];
  process.stdout.write(`${out.join('\n')}\n`);
}

async function cleanUp(): Promise<void> {
  await pg.dropDatabase(DATABASE).catch(() => undefined);
  await privateRedis?.stop();
  privateRedis = null;
}

async function main(): Promise<number> {
  const options = readOptions();
  if (!existsSync(proc.API_MAIN)) throw new cli.BenchError('no dist/: run npm run build first');
  process.on('exit', () => privateRedis?.killSync());
  let result: ReturnType<typeof summarize>;
  try {
    result = summarize(options, await measure(options));
  } finally {
    await cli
      .withTimeout(cleanUp(), 30_000, 'cleaning up')
      .catch((error: Error) => log(error.message));
  }
  printReport(options, result);
  if (options.json) {
    printJson({
      benchmark: 'best-available',
      ok: result.ok,
      contenders: options.contenders,
      seats: SEATS,
      rows: ROWS,
      seatsPerRow: SEATS_PER_ROW,
      quantity: QUANTITY,
      orphanPolicy: 'strict',
      warm: options.warm,
      summary: result.summary,
      details: result.details,
      anomalies: result.anomalies,
    });
  }
  return result.ok ? 0 : 1;
}

cli.runBenchmarkMain({
  benchmark: 'best-available',
  main,
  children,
  totalMs: 15 * 60_000,
  cleanUp,
});
