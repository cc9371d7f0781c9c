/*
 * Flash sale (issue 13): N customers ask at once for 1–4 units of one general-admission section.
 *
 *   npm run bench:flash -- [--flush-mid-wave] [--redis-stopped] [--all] [--customers 10000]
 *                          [--capacity 1000] [--wave2 5000] [--seed 13] [--flush-after 300]
 *                          [--pgbench-seconds 10] [--no-pgbench] [--live-seconds 5] [--json]
 *
 * Starts the built API (npm start's node options, rate limits off) on a fresh database of its own,
 * behind a PgCountingProxy, with a redis-server of its own (never a shared one: the variants flush
 * and stop it, and INFO commandstats then counts this API alone). Registers the customers (not
 * measured), holds one unit of a warm-up event (the admission script cached in Redis), then per
 * scenario, on an event of its own with one GA section `Floor` of `capacity` units:
 *
 *   wave 1  every customer, tokens warm and connections open, sends POST /bookings {eventId,
 *           section: 'Floor', quantity: q} at once, q uniformly 1–4 from the seed;
 *   release half of the wave-1 holds are released by their owners (DELETE /bookings/{id});
 *   wave 2  `wave2` customers without a booking ask again (1–4 each) at once: they must take the
 *           units that are free again, or as many as fit.
 *
 * Scenarios: `normal` (default); `--flush-mid-wave`: FLUSHALL on the private Redis once
 * `flush-after` answers of wave 1 came back; `--redis-stopped`: Redis killed before wave 1
 * (PostgreSQL alone behind the fallback bulkhead, which may answer 503 BOOKING.OVERLOADED), started
 * again before the releases; `--all`: the three. Per wave: units sold (201s, the seats and bookings
 * tables), units twice, refusals by status and code, losers answered without a PostgreSQL
 * statement (a lower bound from the wire: every statement but the winners' holds and the outbox's
 * fan-out charged to a loser; the API's seatlock_holds_total sold_out_redis beside it), time to
 * sell out, p50/p99, statements per unit sold, Redis commands. Ceilings, measured in the same run, the physical limit of the work: the API's own
 * GET /health/live (autocannon, before the API stops); with the API stopped, pgbench of the minimal
 * statement that claims free units (one UPDATE of the first free unit rows FOR UPDATE SKIP LOCKED,
 * one unit, and 1–4 units, per transaction) on the same database, and raw DECRBY on the same
 * redis-server (redis-benchmark).
 *
 * Statements on the wire are also told apart by their text (the hold, the admission count's seed,
 * the outbox, other), and the admission count in Redis is read before and after each wave.
 *
 * Exit 1 on: a unit sold twice, more units sold than the section has, a 5xx (other than 503
 * BOOKING.OVERLOADED while Redis is stopped), a lost request, the API dying in a wave (it is then
 * started again, so that what follows still runs). Wave 1 selling fewer than all units, wave 2
 * selling fewer than fit, and losers reaching PostgreSQL are reported, not failed.
 * Uses DATABASE_URL's server, only the database seatlock_bench_flash. See docs/benchmarks.md.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { Agent, request } from 'undici';
import { PgCountingProxy } from '../support/pg-counting-proxy';
import { freePort, RedisServer } from '../support/redis-server';
import * as http from '../support/bench/bench-http';
import * as pg from '../support/bench/bench-postgres';
import * as proc from '../support/bench/child-processes';
import * as cli from '../support/bench/cli';
import { type LoadResult, loadWindow } from '../support/bench/load';
import { machineBusySeconds, memoryStatus } from '../support/bench/proc-stats';
import { latencySummary, mapLimit, ratio, round, subtract } from '../support/bench/stats';
import { fmt, printJson, renderTable, type TableRow } from '../support/bench/table';

const SECTION = 'Floor';
const PRICE_CENTS = 4_500;
const MAX_QUANTITY = 4;
const DATABASE = pg.benchDatabaseName('seatlock_bench_flash');
const WAVE_TIMEOUT_MS = 180_000;
/** Long enough that no hold lapses between wave 1 and the end of wave 2 (default 300 s). */
const HOLD_TTL_SECONDS = 900;
/** Free units per pgbench client-second: far above what 2 cores claim, so no run runs dry. */
const PGBENCH_UNITS_PER_SECOND = 12_000;
const LIVE_CONNECTIONS = 64;
const REDIS_BENCHMARK_CLIENTS = 50;
const REDIS_BENCHMARK_REQUESTS = 300_000;
/** Share of wave-1 losers Redis should answer alone (the stampede's goal). */
const WITHOUT_PG_GOAL = 0.999;
const log = cli.logger('flash');
const children = new proc.ChildProcesses(log, 10_000);
let privateRedis: RedisServer | null = null;

const SCENARIOS = ['normal', 'flush', 'stopped'] as const;
type Scenario = (typeof SCENARIOS)[number];
const SCENARIO_TITLES: Record<Scenario, string> = {
  normal: 'Redis up',
  flush: 'FLUSHALL mid-wave',
  stopped: 'Redis stopped (PostgreSQL alone)',
};

const USAGE = `Usage: npm run bench:flash -- [--flush-mid-wave] [--redis-stopped] [--all] [options]

  (no variant)         Redis up all along
  --flush-mid-wave     FLUSHALL on the private Redis while wave 1 is in flight
  --redis-stopped      Redis stopped before wave 1 (started again before the releases)
  --all                the three scenarios, one after the other
  --customers N        wave 1: customers asking at once (1 to 10000, default 10000)
  --capacity N         units of the GA section (1 to 50000, default 1000)
  --wave2 N            wave 2: customers without a booking asking at once (0 to 10000, default 5000)
  --seed N             seed of the quantities (default 13)
  --flush-after N      --flush-mid-wave: FLUSHALL after this many answers (default 300)
  --pgbench-seconds S  seconds of each pgbench ceiling run (default 10; three runs)
  --no-pgbench         skip the pgbench ceilings
  --live-seconds S     seconds of the /health/live ceiling window (default 5)
  --json               also print one JSON object as the last line of stdout`;

function readOptions() {
  const [text, flag] = [{ type: 'string' }, { type: 'boolean' }] as const;
  const values = cli.parseBenchArgs(
    {
      'flush-mid-wave': flag,
      'redis-stopped': flag,
      all: flag,
      customers: text,
      capacity: text,
      wave2: text,
      seed: text,
      'flush-after': text,
      'pgbench-seconds': text,
      'no-pgbench': flag,
      'live-seconds': text,
      json: flag,
    },
    USAGE,
  );
  const picked: Scenario[] = [];
  if (values.all === true) picked.push(...SCENARIOS);
  else {
    if (values['flush-mid-wave'] === true) picked.push('flush');
    if (values['redis-stopped'] === true) picked.push('stopped');
    if (picked.length === 0) picked.push('normal');
  }
  const customers = Math.floor(cli.numberOption('customers', values.customers, 10_000, 1, 10_000));
  return {
    scenarios: picked,
    customers,
    capacity: Math.floor(cli.numberOption('capacity', values.capacity, 1000, 1, 50_000)),
    wave2: Math.floor(cli.numberOption('wave2', values.wave2, 5_000, 0, 10_000)),
    seed: Math.floor(cli.numberOption('seed', values.seed, 13, 0, 2 ** 32 - 1)),
    flushAfter: Math.floor(cli.numberOption('flush-after', values['flush-after'], 300, 1, 10_000)),
    pgbenchSeconds: cli.numberOption('pgbench-seconds', values['pgbench-seconds'], 10, 1, 600),
    pgbench: values['no-pgbench'] !== true,
    liveSeconds: cli.numberOption('live-seconds', values['live-seconds'], 5, 1, 120),
    json: values.json === true,
  };
}
type Options = ReturnType<typeof readOptions>;

/** mulberry32: a small seeded generator, so every run asks for the same quantities. */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function quantities(random: () => number, n: number): number[] {
  return Array.from({ length: n }, () => 1 + Math.floor(random() * MAX_QUANTITY));
}

/** The 1-, 5- and 15-minute load averages (/proc/loadavg); null elsewhere. */
function loadAverage(): number[] | null {
  try {
    return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).map(Number);
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------------------------
// The stack: the private Redis, the proxy, the API

async function startApi(databaseUrl: string, redisUrl: string, adminToken: string) {
  const port = await freePort();
  const env = proc.benchApiEnv({
    DATABASE_URL: databaseUrl,
    REDIS_URL: redisUrl,
    PORT: String(port),
    LOCK_MODE: 'redis',
    ADMIN_TOKEN: adminToken,
    HOLD_TTL_SECONDS: String(HOLD_TTL_SECONDS),
    // Holds only: a closed port keeps the API from starting a gateway simulator of its own.
    GATEWAY_URL: 'http://127.0.0.1:9',
    // The outbox's safety-net polls would count as wave traffic; NOTIFY still wakes it.
    NOTIFY_POLL_MS: '3600000',
  });
  const api = children.node('API', proc.API_MAIN, env, proc.apiNodeOptions());
  api.url = `http://127.0.0.1:${port}`;
  await proc.waitHealthy(api, () => readiness(api.url), 60_000);
  return api;
}

type ApiCrash = { code: number | null; signal: string | null; fatal: string | null };

/**
 * The run's API, started again when a wave killed it (so the next scenario still runs); remembers
 * each crash and the highest peak RSS seen.
 */
class ApiHolder {
  readonly crashes: ApiCrash[] = [];
  private peakMiB: number | null = null;

  private constructor(
    public api: proc.Child,
    private readonly start: () => Promise<proc.Child>,
  ) {}

  static async start(start: () => Promise<proc.Child>): Promise<ApiHolder> {
    return new ApiHolder(await start(), start);
  }

  /** Whether the API died (waiting up to `waitMs` for its exit to be seen); the crash noted. */
  async crashed(waitMs: number): Promise<ApiCrash | null> {
    const api = this.api;
    const gone = await Promise.race([api.exited.then(() => true), sleep(waitMs).then(() => false)]);
    if (!gone) return null;
    const fatal = api.tail.find((line) => /FATAL ERROR|out of memory|Error:/i.test(line)) ?? null;
    const crash = { code: api.child.exitCode, signal: api.child.signalCode, fatal };
    this.crashes.push(crash);
    log(`the API died (code ${crash.code}, signal ${crash.signal}): ${fatal ?? api.tail.at(-1)}`);
    return crash;
  }

  /** The API, started again if it died. */
  async alive(): Promise<proc.Child> {
    if (this.api.hasExited) {
      log('starting the API again');
      this.api = await this.start();
    }
    return this.api;
  }

  notePeak(): void {
    const peak = memoryStatus(this.api.pid)?.peak ?? null;
    if (peak !== null) this.peakMiB = Math.max(this.peakMiB ?? 0, peak);
  }

  /** MiB (what /proc reports) to MB, the suite's unit. */
  get peakRssMB(): number | null {
    return this.peakMiB === null ? null : round(this.peakMiB * 1.048576, 1);
  }
}

function readiness(api: string) {
  return http.call(api, 'GET', '/health/ready', { timeoutMs: 2_000 });
}

/** Until /health/ready reports Redis `up` (or, `up` false, not up): the API saw the change. */
async function waitRedisSeen(api: string, up: boolean): Promise<void> {
  const deadline = Date.now() + 20_000;
  let last = '';
  while (Date.now() < deadline) {
    const answer = await readiness(api).catch(() => null);
    const status = answer?.body?.details?.redis?.status ?? answer?.body?.info?.redis?.status;
    last = answer ? `${answer.status} ${answer.text.slice(0, 200)}` : 'no answer';
    if (answer?.status === 200 && (status === 'up') === up) return;
    await sleep(100);
  }
  throw new cli.BenchError(`the API did not see Redis ${up ? 'up' : 'down'} (last: ${last})`);
}

/** An event of one GA section, checked on GET /events/{id}; its seat map then cached. */
async function createEvent(api: string, adminToken: string, name: string, capacity: number) {
  const body = {
    name: `${name} ${new Date().toISOString()}`,
    startsAt: '2027-06-01T19:30:00Z',
    venue: 'Bench Arena',
    currency: 'EUR',
    sections: [{ name: SECTION, capacity, priceCents: PRICE_CENTS }],
  };
  const created = http.expectStatus(
    await http.call<{ id: string }>(api, 'POST', '/admin/events', { token: adminToken, body }),
    201,
    'POST /admin/events',
  );
  type Section = { name: string; kind: string; capacity: number; available: number };
  const shown = http.expectStatus(
    await http.call<{ sections: Section[] }>(api, 'GET', `/events/${created.id}`),
    200,
    'GET /events/{id}',
  );
  const section = shown.sections?.find((s) => s.name === SECTION);
  if (section?.kind !== 'ga' || section.capacity !== capacity || section.available !== capacity) {
    throw new cli.BenchError(`GET /events/{id}: section ${JSON.stringify(section)}`);
  }
  // The seat map into the API's cache (a GA-only event lists no seats).
  http.expectStatus(await http.call(api, 'GET', `/events/${created.id}/seats`), 200, 'GET seats');
  return created.id;
}

// ---------------------------------------------------------------------------------------------
// A wave

type Shot = {
  customer: number;
  quantity: number;
  status: string;
  /** Milliseconds from sending to the whole answer; `end`: from the wave's start to it. */
  ms: number;
  end: number;
  text: string;
};

/** One keep-alive connection per customer, opened beforehand on GET /health/live. */
async function burstAgent(api: string, connections: number): Promise<Agent> {
  const agent = new Agent({
    connections,
    keepAliveTimeout: WAVE_TIMEOUT_MS,
    keepAliveMaxTimeout: WAVE_TIMEOUT_MS,
    headersTimeout: WAVE_TIMEOUT_MS,
    bodyTimeout: WAVE_TIMEOUT_MS,
  });
  const live = Array.from({ length: connections }, () =>
    http.call(api, 'GET', '/health/live', { dispatcher: agent, timeoutMs: 60_000 }),
  );
  await cli.withTimeout(Promise.all(live), 90_000, 'opening connections');
  return agent;
}

/**
 * Every request at once (undici, not a fixed-rate window); `onAnswer` sees the running count of
 * HTTP answers (connection errors not counted), for the mid-wave fault.
 */
async function fire(
  agent: Agent,
  api: string,
  eventId: string,
  tokens: readonly string[],
  asks: readonly { customer: number; quantity: number }[],
  onAnswer: (answered: number, elapsedMs: number) => void = () => undefined,
) {
  let answered = 0;
  const wallStart = performance.now();
  const shoot = async ({ customer, quantity }: (typeof asks)[number]): Promise<Shot> => {
    const started = performance.now();
    const body = JSON.stringify({ eventId, section: SECTION, quantity });
    let shot: Pick<Shot, 'status' | 'text'>;
    try {
      const response = await request(`${api}/bookings`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${tokens[customer]}`,
          'content-type': 'application/json',
        },
        body,
        dispatcher: agent,
      });
      shot = { status: String(response.statusCode), text: await response.body.text() };
    } catch (error) {
      const { code, name, message } = error as NodeJS.ErrnoException;
      shot = { status: `error:${code ?? name}`, text: message };
    }
    const now = performance.now();
    if (!shot.status.startsWith('error')) {
      answered += 1;
      onAnswer(answered, now - wallStart);
    }
    return { customer, quantity, ...shot, ms: now - started, end: now - wallStart };
  };
  const busyBefore = machineBusySeconds();
  const shots = await cli.withTimeout(Promise.all(asks.map(shoot)), WAVE_TIMEOUT_MS, 'the wave');
  const wallMs = performance.now() - wallStart;
  const busyAfter = machineBusySeconds();
  const machineCores =
    busyBefore === null || busyAfter === null
      ? null
      : round((busyAfter - busyBefore) / (wallMs / 1000), 2);
  return { shots, wallMs, machineCores };
}

type CommandCalls = { calls: number; failed: number };
type CommandStats = Record<string, CommandCalls>;

/** Calls per command since the server started (INFO commandstats), on a connection of its own. */
async function commandStats(url: string): Promise<CommandStats> {
  const client = new Redis(url, { maxRetriesPerRequest: 0, lazyConnect: true });
  client.on('error', () => undefined);
  try {
    await client.connect();
    const stats: CommandStats = {};
    for (const line of (await client.info('commandstats')).split('\n')) {
      const match = /^cmdstat_([^:]+):calls=(\d+).*?failed_calls=(\d+)/.exec(line.trim());
      if (match) stats[match[1]] = { calls: Number(match[2]), failed: Number(match[3]) };
    }
    return stats;
  } finally {
    client.disconnect();
  }
}

/** Calls per command between two INFO commandstats; our own INFO and FLUSHALL left out. */
function commandDelta(after: CommandStats, before: CommandStats): CommandStats {
  const delta: CommandStats = {};
  for (const [command, { calls, failed }] of Object.entries(after)) {
    const was = before[command] ?? { calls: 0, failed: 0 };
    if (calls > was.calls && command !== 'info' && command !== 'flushall') {
      delta[command] = { calls: calls - was.calls, failed: failed - was.failed };
    }
  }
  return delta;
}

type AdmissionCount = { key: string; value: number | null; pttlMs: number } | null;

/**
 * The event's admission counter in Redis (found by its event tag, whatever its prefix): its value
 * and time to live, to set beside the free units PostgreSQL has. Null when it does not exist.
 */
async function admissionCount(url: string, eventId: string): Promise<AdmissionCount> {
  const client = new Redis(url, { maxRetriesPerRequest: 0, lazyConnect: true });
  client.on('error', () => undefined);
  try {
    await client.connect();
    // Not any key of the event: its seat stream (seatstream:{event:…}) is no string.
    const keys = await client.keys(`*ga:{event:${eventId}}*`);
    const key = keys[0];
    if (!key) return null;
    const [value, pttlMs] = await Promise.all([client.get(key), client.pttl(key)]);
    return { key, value: value === null ? null : Number(value), pttlMs };
  } finally {
    client.disconnect();
  }
}

const HOLD_OUTCOMES = ['held', 'sold_out_redis', 'sold_out_seeded', 'sold_out_database'] as const;
type HoldMetrics = Record<(typeof HOLD_OUTCOMES)[number] | 'fallbacks', number>;

/** seatlock_holds_total by outcome and the fallbacks; /metrics reads PostgreSQL: outside waves. */
async function holdMetrics(api: string): Promise<HoldMetrics> {
  const metrics = {} as HoldMetrics;
  for (const outcome of HOLD_OUTCOMES) {
    metrics[outcome] = await http.metricValue(api, 'seatlock_holds_total', { outcome });
  }
  metrics.fallbacks = await http.metricValue(api, 'seatlock_hold_fallbacks_total');
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

const STATEMENT_KINDS = ['hold', 'seed', 'outbox', 'other'] as const;
type StatementKind = (typeof STATEMENT_KINDS)[number];

/**
 * What a statement on the wire was: the GA hold (seatlock_hold_units), the admission count's seed
 * (seatlock_units_available), the outbox's fan-out, or anything else (a token lookup, …).
 */
function statementKind(sql: string): StatementKind {
  if (sql.includes('seatlock_hold_units')) return 'hold';
  if (sql.includes('seatlock_units_available')) return 'seed';
  if (/outbox|notification|webhook_deliver/i.test(sql)) return 'outbox';
  return 'other';
}

function statementsByKind(sqls: readonly string[]) {
  const kinds = Object.fromEntries(STATEMENT_KINDS.map((k) => [k, 0])) as Record<
    StatementKind,
    number
  >;
  const others = new Map<string, number>();
  for (const sql of sqls) {
    const kind = statementKind(sql);
    kinds[kind] += 1;
    if (kind === 'other') {
      const text = sql.replace(/\s+/g, ' ').slice(0, 120);
      others.set(text, (others.get(text) ?? 0) + 1);
    }
  }
  const otherTexts = Object.fromEntries(
    [...others].sort((a, b) => b[1] - a[1]).slice(0, 5),
  ) as Record<string, number>;
  return { kinds, otherTexts };
}

type UnitRow = { label: string; status: string; booking_id: string | null };
type BookingRow = { id: string; customer_id: string; status: string; seat_labels: string[] };
type Stored = { units: UnitRow[]; bookings: BookingRow[] };

/** The event's units and bookings, read straight from PostgreSQL (not through the proxy). */
async function stored(benchUrl: string, eventId: string): Promise<Stored> {
  return pg.withClient(benchUrl, async (client) => {
    const units = await client.query<UnitRow>(
      `SELECT label, status, booking_id FROM seats WHERE event_id = $1 ORDER BY position`,
      [eventId],
    );
    const bookings = await client.query<BookingRow>(
      `SELECT id, customer_id, status, seat_labels FROM bookings WHERE event_id = $1`,
      [eventId],
    );
    return { units: units.rows, bookings: bookings.rows };
  });
}

type WaveContext = {
  holder: ApiHolder;
  proxy: PgCountingProxy;
  benchUrl: string;
  redisUrl: string;
  eventId: string;
  tokens: readonly string[];
};

/** One wave, from warm tokens and open connections to the outbox fanned out and the rows read. */
async function runWave(
  ctx: WaveContext,
  name: string,
  asks: { customer: number; quantity: number }[],
  fault: {
    before?: () => Promise<void>;
    onAnswer?: (answered: number, elapsedMs: number) => void;
    redisDown?: boolean;
  },
) {
  const { proxy, benchUrl } = ctx;
  const api = await ctx.holder.alive();
  log(`${name}: warming ${fmt(asks.length)} tokens, opening ${fmt(asks.length)} connections`);
  await http.warmCaches(
    api.url,
    asks.map(({ customer }) => ({ id: '', token: ctx.tokens[customer] })),
    [],
  );
  const agent = await burstAgent(api.url, asks.length);
  try {
    const pendingBefore = await drainOutbox(benchUrl);
    await fault.before?.();
    const counterBefore = fault.redisDown ? null : await admissionCount(ctx.redisUrl, ctx.eventId);
    const metricsBefore = await holdMetrics(api.url);
    const logBefore = api.snapshot();
    const redisBefore = fault.redisDown ? null : await commandStats(ctx.redisUrl);
    const load = loadAverage();
    const wireBefore = proxy.counts();
    const logFrom = proxy.statementLog().length;
    log(`${name}: ${fmt(asks.length)} x POST /bookings {section: '${SECTION}', quantity: 1-4}`);
    const wave = await fire(agent, api.url, ctx.eventId, ctx.tokens, asks, fault.onAnswer);
    const wire = subtract(proxy.counts(), wireBefore);
    const statements = statementsByKind(proxy.statementLog(logFrom));
    const redisAfter = fault.redisDown ? null : await commandStats(ctx.redisUrl);
    const counter = fault.redisDown ? null : await admissionCount(ctx.redisUrl, ctx.eventId);
    // An answer that never came may be the API gone: then no /metrics and no fan-out to wait for.
    const unanswered = wave.shots.some((shot) => shot.status.startsWith('error'));
    const crash = await ctx.holder.crashed(unanswered ? 3_000 : 0);
    if (!crash) ctx.holder.notePeak();
    const pending = crash ? null : await drainOutbox(benchUrl);
    const wireDrained = subtract(proxy.counts(), wireBefore);
    const metrics = crash ? null : subtract(await holdMetrics(api.url), metricsBefore);
    return {
      crash,
      counterBefore,
      counter,
      wave,
      wire,
      statements,
      wireDrained,
      redis: redisBefore && redisAfter ? commandDelta(redisAfter, redisBefore) : null,
      metrics,
      pendingBefore,
      pending,
      loadAverageBefore: load,
      apiLog: api.logSince(logBefore),
      rows: await stored(benchUrl, ctx.eventId),
    };
  } finally {
    await agent.destroy().catch(() => undefined);
  }
}
type WaveRaw = Awaited<ReturnType<typeof runWave>>;

// ---------------------------------------------------------------------------------------------
// A scenario: wave 1, the releases, wave 2

async function runScenario(
  scenario: Scenario,
  options: Options,
  base: Omit<WaveContext, 'eventId'>,
  customers: http.BenchCustomer[],
  adminToken: string,
) {
  const api = await base.holder.alive();
  log(`[${scenario}] ${SCENARIO_TITLES[scenario]}: event of ${fmt(options.capacity)} GA units`);
  const eventId = await createEvent(api.url, adminToken, `Flash ${scenario}`, options.capacity);
  const ctx: WaveContext = { ...base, eventId };
  const random = seededRandom(options.seed);
  const wave1Asks = quantities(random, options.customers).map((quantity, customer) => ({
    customer,
    quantity,
  }));

  type Flush = { afterAnswers: number; atMs: number; done: Promise<string> };
  let flush: Flush | null = null;
  const fault: Parameters<typeof runWave>[3] = {};
  if (scenario === 'flush') {
    fault.onAnswer = (answered, elapsedMs) => {
      if (answered !== options.flushAfter || flush || !privateRedis) return;
      const done = privateRedis.flushAll().then(
        () => 'ok',
        (error: Error) => `failed: ${error.message}`,
      );
      flush = { afterAnswers: answered, atMs: round(elapsedMs) ?? 0, done };
    };
  }
  if (scenario === 'stopped') {
    fault.redisDown = true;
    fault.before = async () => {
      log(`[${scenario}] stopping Redis`);
      await privateRedis?.kill();
      await waitRedisSeen(api.url, false);
    };
  }
  const wave1 = await runWave(ctx, `[${scenario}] wave 1`, wave1Asks, fault);
  // Assigned in a callback: the compiler cannot see it.
  const flushed = flush as Flush | null;
  const flushReport = flushed
    ? { afterAnswers: flushed.afterAnswers, atMs: flushed.atMs, result: await flushed.done }
    : null;

  if (scenario === 'stopped') {
    log(`[${scenario}] starting Redis again`);
    await privateRedis?.restart();
  }
  // The releases and wave 2 on the API that survived wave 1, or on a new one.
  const after = await base.holder.alive();
  if (scenario === 'stopped') await waitRedisSeen(after.url, true);

  // Half of the wave-1 holds released by their owners: every second 201, in customer order.
  const held = wave1.wave.shots
    .filter((shot) => shot.status === '201')
    .sort((a, b) => a.customer - b.customer);
  const toRelease = held.filter((_, i) => i % 2 === 1);
  log(`[${scenario}] releasing ${fmt(toRelease.length)} of ${fmt(held.length)} holds`);
  const released = await mapLimit(toRelease, 16, async (shot) => {
    const booking = JSON.parse(shot.text) as { id: string };
    const answer = await http.call<{ status: string; seats: string[] }>(
      after.url,
      'DELETE',
      `/bookings/${booking.id}`,
      { token: ctx.tokens[shot.customer] },
    );
    return {
      status: answer.status,
      bookingStatus: answer.body?.status,
      units:
        answer.status === 200 && answer.body?.status === 'released' ? answer.body.seats.length : 0,
      text: answer.text.slice(0, 300),
    };
  });
  const releasedUnits = released.reduce((sum, r) => sum + r.units, 0);
  const releaseFailures = released.filter((r) => r.units === 0);
  const afterRelease = await stored(base.benchUrl, eventId);
  const freeAtWave2 = afterRelease.units.filter((u) => u.status === 'free').length;

  // Wave 2: customers who hold nothing of this event, in order.
  const booked = new Set(held.map((shot) => shot.customer));
  const wave2Asks = customers
    .map((_, customer) => customer)
    .filter((customer) => !booked.has(customer))
    .slice(0, options.wave2)
    .map((customer) => ({ customer, quantity: 1 + Math.floor(random() * MAX_QUANTITY) }));
  const wave2 =
    wave2Asks.length > 0 ? await runWave(ctx, `[${scenario}] wave 2`, wave2Asks, {}) : null;
  return {
    scenario,
    eventId,
    wave1,
    flush: flushReport,
    release: {
      bookings: toRelease.length,
      units: releasedUnits,
      failures: releaseFailures.length,
      firstFailure: releaseFailures[0]?.text ?? null,
      freeAtWave2,
      rowsAfter: afterRelease,
    },
    wave2,
  };
}
type ScenarioRaw = Awaited<ReturnType<typeof runScenario>>;

/** The server's own /health/live on 64 connections: the framework's floor, the API idle. */
async function liveCeiling(api: string, seconds: number): Promise<LoadResult | null> {
  log(`ceiling: GET /health/live, ${LIVE_CONNECTIONS} connections, 1 s warm-up + ${seconds} s`);
  return loadWindow({
    url: api,
    connections: LIVE_CONNECTIONS,
    seconds,
    warmupSeconds: 1,
    expected: 200,
    next: () => ({ method: 'GET', path: '/health/live' }),
  });
}

/** From a fresh database to the API stopped and the ceilings run; answers the raw measurements. */
async function measure(options: Options) {
  log(`fresh database ${DATABASE}, a private redis-server`);
  const benchUrl = await cli.withTimeout(pg.recreateDatabase(DATABASE), 30_000, 'recreating it');
  privateRedis = await RedisServer.start();
  const redisUrl = privateRedis.url;
  const target = new URL(benchUrl);
  // The statements' text too: what a wave's statements were (hold, seed, fan-out, other).
  const proxy = await PgCountingProxy.start(target.hostname, Number(target.port || 5432), {
    logStatements: true,
  });
  const adminToken = `bench-admin-${randomBytes(16).toString('hex')}`;
  let holder: ApiHolder | undefined;
  try {
    holder = await ApiHolder.start(() => startApi(proxy.urlFor(benchUrl), redisUrl, adminToken));
    const api = holder.api;
    const registering = performance.now();
    log(`registering ${fmt(options.customers)} customers (not measured)`);
    const tag = randomBytes(4).toString('hex');
    const customers = await http.registerCustomers(api.url, options.customers, tag);
    const registrationMs = round(performance.now() - registering);
    // One unit of a warm-up event: the admission script in Redis's cache, the GA path warm.
    const warmEvent = await createEvent(api.url, adminToken, 'Warm-up', 10);
    const [warmCustomer] = await http.registerCustomers(api.url, 1, `${tag}-warm`);
    const warmBody = { eventId: warmEvent, section: SECTION, quantity: 1 };
    http.expectStatus(
      await http.call(api.url, 'POST', '/bookings', { token: warmCustomer.token, body: warmBody }),
      201,
      'the warm-up hold',
    );
    const base = { holder, proxy, benchUrl, redisUrl, tokens: customers.map((c) => c.token) };
    const scenarios: ScenarioRaw[] = [];
    for (const scenario of options.scenarios) {
      scenarios.push(await runScenario(scenario, options, base, customers, adminToken));
    }
    const last = await holder.alive();
    const live = await liveCeiling(last.url, options.liveSeconds);
    holder.notePeak();
    await children.stop(last);
    return {
      registrationMs,
      scenarios,
      live,
      peakRssMB: holder.peakRssMB,
      apiCrashes: holder.crashes,
      unitClaims: await claimCeilings(options, benchUrl),
      redisCeiling: await redisCeiling(redisUrl),
    };
  } catch (error) {
    if (holder?.api.tail.length) log(`last API output:\n${holder.api.tail.join('\n')}`);
    throw error;
  } finally {
    if (holder) await children.stop(holder.api);
    await proxy.stop();
  }
}

// ---------------------------------------------------------------------------------------------
// The ceilings: pgbench of the minimal unit claim, raw DECRBY

/**
 * The least SQL that sells free units: ONE statement per transaction that marks the first `q`
 * free units of the section held, skipping rows other transactions are claiming (the partial
 * index seats_free_units_idx, as the app walks it). No booking row, no count, no cap, no function.
 */
const UNIT_CLAIM_SQL = String.raw`\set bn (:client_id + 1) * 1000000000 + :runbase + random(1, 999999999)
UPDATE seats SET status = 'held', booking_id = lpad(to_hex(:bn::bigint), 32, '0')::uuid,
       held_until = now() + interval '${HOLD_TTL_SECONDS} seconds'
 WHERE event_id = :ev AND label IN (
   SELECT label FROM seats
    WHERE event_id = :ev AND section = '${SECTION}' AND row_name IS NULL AND status = 'free'
    ORDER BY position LIMIT :q FOR UPDATE SKIP LOCKED)
RETURNING label;
`;

export interface ClaimRun {
  script: string;
  clients: number;
  tps: number | null;
  unitsPerSecond: number | null;
  processed: number | null;
  unitsClaimed: number;
  unitsLeft: number;
}

/** A GA event of `units` free units written straight into the database; answers its id. */
async function prepareUnits(url: string, units: number): Promise<string> {
  const eventId = randomUUID();
  await pg.withClient(url, async (client) => {
    const sections = [{ name: SECTION, kind: 'ga', capacity: units, priceCents: PRICE_CENTS }];
    await client.query(
      `INSERT INTO events (id, name, venue, starts_at, currency, sections, seat_count)
       VALUES ($1, 'pgbench unit claim', 'Bench Arena', '2027-06-01T19:30:00Z', 'EUR', $2, $3)`,
      [eventId, JSON.stringify(sections), units],
    );
    await client.query(
      `INSERT INTO seats (event_id, label, section, position, price_cents, row_name, seat_number)
       SELECT $1, 'GA1-' || g, $3, g, $4, NULL, g FROM generate_series(1, $2::int) g`,
      [eventId, units, SECTION, PRICE_CENTS],
    );
    await client.query('VACUUM ANALYZE seats');
  });
  return eventId;
}

async function claimRun(
  url: string,
  seconds: number,
  clients: number,
  quantity: '1' | 'random(1, 4)',
  run: number,
): Promise<ClaimRun> {
  const script = quantity === '1' ? 'unit claim, 1 unit' : 'unit claim, 1-4 units';
  const units = Math.ceil(PGBENCH_UNITS_PER_SECOND * seconds * (quantity === '1' ? 1 : 2.5));
  log(`ceiling: pgbench ${script}, ${clients} clients x ${seconds} s (${fmt(units)} units)`);
  const ev = await prepareUnits(url, units);
  const result = await pg.runPgbench(children, {
    url,
    script: `\\set q ${quantity}\n${UNIT_CLAIM_SQL}`,
    clients,
    seconds,
    vars: { ev, runbase: run * 1_000_000_000_000 },
  });
  const counts = await pg.withClient(url, async (client) => {
    const { rows } = await client.query<{ held: number; free: number }>(
      `SELECT count(*) FILTER (WHERE status = 'held')::int AS held,
              count(*) FILTER (WHERE status = 'free')::int AS free
         FROM seats WHERE event_id = $1`,
      [ev],
    );
    return rows[0];
  });
  // Every transaction must have claimed at least one unit: a dry pool would inflate the rate.
  if (counts.free === 0 || (result.processed !== null && counts.held < result.processed)) {
    throw new cli.BenchError(
      `pgbench ${script}: ${counts.held} units held for ${result.processed} transactions, ` +
        `${counts.free} left: the pool ran dry`,
    );
  }
  const perTransaction = result.processed ? counts.held / result.processed : null;
  return {
    script,
    clients,
    tps: round(result.tps),
    unitsPerSecond:
      result.tps === null || perTransaction === null ? null : round(result.tps * perTransaction),
    processed: result.processed,
    unitsClaimed: counts.held,
    unitsLeft: counts.free,
  };
}

/** pgbench of the unit claim, the API stopped: 1 unit at 10 and 32 clients, 1–4 units at 10. */
async function claimCeilings(options: Options, url: string) {
  const none = (skipped: string) => ({ runs: [] as ClaimRun[], skipped });
  if (!options.pgbench) return none('--no-pgbench');
  if (!pg.findPgbench()) return none('no pgbench on this machine');
  try {
    const runs: ClaimRun[] = [];
    const plan: [number, '1' | 'random(1, 4)'][] = [
      [10, '1'],
      [32, '1'],
      [10, 'random(1, 4)'],
    ];
    for (const [wanted, quantity] of plan) {
      const clients = Math.max(1, Math.min(wanted, (await pg.availableConnections()) - 5));
      runs.push(await claimRun(url, options.pgbenchSeconds, clients, quantity, runs.length + 1));
    }
    return { runs, skipped: null };
  } catch (error) {
    return none(`pgbench failed: ${(error as Error).message.split('\n')[0]}`);
  }
}

export interface RedisCeiling {
  tool: string;
  clients: number;
  perSecond: number | null;
  p50Ms: number | null;
  skipped: string | null;
}

/** Raw DECRBY on the same redis-server: redis-benchmark (C, pipelining 1), else an ioredis loop. */
async function redisCeiling(url: string): Promise<RedisCeiling> {
  const port = new URL(url).port;
  const key = 'ga:{ceiling}:1';
  log(`ceiling: DECRBY on the private Redis, ${REDIS_BENCHMARK_CLIENTS} clients`);
  try {
    await commandStats(url); // it answers
    const { code, output } = await children.runToEnd(
      'redis-benchmark',
      [
        'redis-benchmark',
        ...['-h', '127.0.0.1', '-p', port, '-c', String(REDIS_BENCHMARK_CLIENTS)],
        ...['-n', String(REDIS_BENCHMARK_REQUESTS), '--csv', 'DECRBY', key, '1'],
      ],
      process.env,
      120_000,
    );
    const line = output.split('\n').find((l) => l.startsWith('"DECRBY'));
    const cells = line?.split(',').map((cell) => Number(cell.replace(/"/g, '')));
    if (code === 0 && cells && Number.isFinite(cells[1])) {
      return {
        tool: 'redis-benchmark',
        clients: REDIS_BENCHMARK_CLIENTS,
        perSecond: round(cells[1]),
        p50Ms: Number.isFinite(cells[4]) ? cells[4] : null,
        skipped: null,
      };
    }
    log(`redis-benchmark did not run (exit ${code}); an ioredis loop instead`);
  } catch (error) {
    log(`redis-benchmark did not run (${(error as Error).message}); an ioredis loop instead`);
  }
  return ioredisCeiling(url, key);
}

async function ioredisCeiling(url: string, key: string): Promise<RedisCeiling> {
  const client = new Redis(url, { maxRetriesPerRequest: 0 });
  client.on('error', () => undefined);
  try {
    const until = performance.now() + 3_000;
    let done = 0;
    const loop = async () => {
      while (performance.now() < until) {
        await client.decrby(key, 1);
        done += 1;
      }
    };
    const started = performance.now();
    await Promise.all(Array.from({ length: REDIS_BENCHMARK_CLIENTS }, loop));
    const perSecond = round((done * 1000) / (performance.now() - started));
    return {
      tool: 'ioredis loop',
      clients: REDIS_BENCHMARK_CLIENTS,
      perSecond,
      p50Ms: null,
      skipped: null,
    };
  } catch (error) {
    const skipped = `raw Redis failed: ${(error as Error).message}`;
    return { tool: 'none', clients: 0, perSecond: null, p50Ms: null, skipped };
  } finally {
    client.disconnect();
  }
}

// ---------------------------------------------------------------------------------------------
// The checks and the report

type Measured = Awaited<ReturnType<typeof measure>>;
type Answer201 = { customer: number; quantity: number; end: number; id: string; seats: string[] };

const OVERLOADED = '503 BOOKING.OVERLOADED';
const SOLD_OUT = '409 BOOKING.SOLD_OUT';

/** What one wave's answers say and what the tables hold afterwards, checked against each other. */
function checkWave(
  raw: WaveRaw,
  capacity: number,
  options: { overloadAllowed: boolean; freeAtStart: number; liveBefore: BookingRow[] },
) {
  const statuses: Record<string, number> = {};
  const samples: Record<string, string> = {};
  const answers: Answer201[] = [];
  const refusedQuantities: number[] = [];
  for (const shot of raw.wave.shots) {
    let body: { code?: string; id?: string; seats?: string[] } = {};
    try {
      body = JSON.parse(shot.text);
    } catch {
      // not JSON: a network error or a proxy's page; counted by its status
    }
    const key = shot.status === '201' ? '201' : `${shot.status} ${body.code ?? '-'}`;
    statuses[key] = (statuses[key] ?? 0) + 1;
    samples[key] ??= shot.text.slice(0, 300);
    if (shot.status === '201') {
      answers.push({ ...shot, id: body.id ?? '', seats: body.seats ?? [] });
    }
    if (key === SOLD_OUT) refusedQuantities.push(shot.quantity);
  }
  const units = raw.rows.units;
  const live = raw.rows.bookings.filter((b) => b.status === 'held' || b.status === 'confirmed');
  const liveById = new Map(live.map((booking) => [booking.id, booking]));
  const twice = (labels: string[]) => {
    const seen = new Map<string, number>();
    for (const label of labels) seen.set(label, (seen.get(label) ?? 0) + 1);
    return [...seen].filter(([, n]) => n > 1).map(([label]) => label);
  };
  // A unit named by two live bookings, by two 201s of this wave, or by a 201 and a booking that
  // was live before the wave; and the seats table and the bookings must agree both ways.
  const before = new Set(options.liveBefore.flatMap((booking) => booking.seat_labels));
  const twiceInBookings = twice(live.flatMap((booking) => booking.seat_labels));
  const twiceInAnswers = twice(answers.flatMap((answer) => answer.seats));
  const answeredButHeldBefore = answers.flatMap((a) => a.seats).filter((l) => before.has(l));
  const unitByLabel = new Map(units.map((unit) => [unit.label, unit]));
  const mismatched = new Set<string>();
  for (const booking of live) {
    for (const label of booking.seat_labels) {
      if (unitByLabel.get(label)?.booking_id !== booking.id) mismatched.add(label);
    }
  }
  for (const unit of units) {
    if (unit.status === 'free') continue;
    const owner = unit.booking_id ? liveById.get(unit.booking_id) : undefined;
    if (!owner?.seat_labels.includes(unit.label)) mismatched.add(unit.label);
  }
  // A 201 must name its booking as stored, live, with exactly the quantity asked for.
  const wrongAnswers = answers.filter((answer) => {
    const booking = liveById.get(answer.id);
    return (
      answer.seats.length !== answer.quantity ||
      !booking ||
      booking.seat_labels.length !== answer.quantity ||
      answer.seats.some((label) => !booking.seat_labels.includes(label))
    );
  });
  const unitsSold = answers.reduce((sum, answer) => sum + answer.quantity, 0);
  const unitsHeldInTable = units.filter((unit) => unit.status !== 'free').length;
  const unitsInLiveBookings = live.reduce((sum, booking) => sum + booking.seat_labels.length, 0);
  const freeAtEnd = units.filter((unit) => unit.status === 'free').length;
  const lost = raw.wave.shots.filter((shot) => shot.status.startsWith('error')).length;
  const serverErrors = Object.entries(statuses)
    .filter(([key]) => key.startsWith('5') && !(options.overloadAllowed && key === OVERLOADED))
    .reduce((sum, [, n]) => sum + n, 0);
  const otherRefusals = Object.entries(statuses)
    .filter(([key]) => key !== '201' && key !== SOLD_OUT && key !== OVERLOADED)
    .reduce((sum, [, n]) => sum + n, 0);
  const smallestRefused = refusedQuantities.length ? Math.min(...refusedQuantities) : null;
  // Refused SOLD_OUT although, even at the end of the wave (units only ever left the pool during
  // it), enough units were free for that request.
  const refusedWhileFree = refusedQuantities.filter((q) => q <= freeAtEnd).length;
  return {
    statuses,
    samples,
    answers,
    unitsSold,
    unitsHeldInTable,
    unitsInLiveBookings,
    freeAtStart: options.freeAtStart,
    freeAtEnd,
    smallestRefused,
    refusedWhileFree,
    twice: {
      bookings: twiceInBookings,
      answers: twiceInAnswers,
      heldBefore: answeredButHeldBefore,
      seatsTable: [...mismatched],
    },
    wrongAnswers: wrongAnswers.length,
    oversold: Math.max(0, unitsInLiveBookings - capacity, unitsHeldInTable - capacity),
    lost:
      lost +
      Math.max(0, raw.wave.shots.length - Object.values(statuses).reduce((a, b) => a + b, 0)),
    serverErrors,
    otherRefusals,
  };
}

function summarizeWave(
  raw: WaveRaw,
  capacity: number,
  check: ReturnType<typeof checkWave>,
  ceilings: { unitsPerSecond: number | null; live: number | null; redis: number | null },
) {
  const shots = raw.wave.shots;
  const holds = check.answers.length;
  const losers = shots.length - holds;
  const wallMs = round(raw.wave.wallMs) ?? 0;
  const lastSale = check.answers.reduce((max, answer) => Math.max(max, answer.end), 0);
  const sellOutMs = holds > 0 ? round(lastSale) : null;
  const unitsPerSecond = sellOutMs ? round((check.unitsSold * 1000) / sellOutMs, 1) : null;
  const requestsPerSecond = wallMs > 0 ? round((shots.length * 1000) / wallMs, 1) : null;
  const latency = latencySummary(shots.map((shot) => shot.ms));
  const latencyOf = (sold: boolean) =>
    latencySummary(shots.filter((s) => (s.status === '201') === sold).map((s) => s.ms));
  const redis = raw.redis;
  const scripts = redis ? (redis.evalsha?.calls ?? 0) + (redis.eval?.calls ?? 0) : null;
  const noscript = redis ? (redis.evalsha?.failed ?? 0) : null;
  const redisAll = redis ? Object.values(redis).reduce((sum, c) => sum + c.calls, 0) : null;
  const statements = raw.wire.statements;
  const kinds = raw.statements.kinds;
  // Every statement in the wave but the winners' holds and the outbox's fan-out charged to a
  // loser (a request makes at most one hold call and one seed): a lower bound of those without any.
  const chargedToLosers = Math.min(losers, Math.max(0, statements - kinds.outbox - holds));
  const perUnit = (n: number) => (check.unitsSold > 0 ? round(n / check.unitsSold, 2) : null);
  return {
    apiDied: raw.crash !== null,
    requests: shots.length,
    holds,
    losers,
    unitsSold: check.unitsSold,
    unitsHeldInTable: check.unitsHeldInTable,
    unitsInLiveBookings: check.unitsInLiveBookings,
    freeAtStart: check.freeAtStart,
    freeAtEnd: check.freeAtEnd,
    smallestRefusedQuantity: check.smallestRefused,
    refusedWhileEnoughFree: check.refusedWhileFree,
    refusals: Object.fromEntries(Object.entries(check.statuses).filter(([key]) => key !== '201')),
    unitsTwice:
      check.twice.bookings.length +
      check.twice.answers.length +
      check.twice.heldBefore.length +
      check.twice.seatsTable.length,
    oversold: check.oversold,
    wrongAnswers: check.wrongAnswers,
    lost: check.lost,
    serverErrors: check.serverErrors,
    /** The API's /metrics over the wave; null when the API died in it. */
    soldOutRedis: raw.metrics?.sold_out_redis ?? null,
    soldOutDatabase: raw.metrics?.sold_out_database ?? null,
    heldMetric: raw.metrics?.held ?? null,
    fallbacks: raw.metrics?.fallbacks ?? null,
    /** At least this share of losers cost no statement, by the wire. */
    withoutPostgres: losers > 0 && !raw.crash ? round(1 - chargedToLosers / losers, 4) : null,
    /** Losers Redis answered, by the API's metric (sold_out_redis), seeding or not. */
    soldOutRedisShare:
      losers > 0 && raw.metrics ? round(raw.metrics.sold_out_redis / losers, 4) : null,
    statementsByKind: kinds,
    /** The admission counter in Redis before and after the wave (null: absent or not asked). */
    admissionBefore: raw.counterBefore?.value ?? null,
    admissionAfter: raw.counter?.value ?? null,
    admissionAfterTtlMs: raw.counter?.pttlMs ?? null,
    sellOutMs,
    wallMs,
    unitsPerSecond,
    requestsPerSecond,
    vsUnitClaim: ratio(unitsPerSecond, ceilings.unitsPerSecond),
    vsLive: ratio(requestsPerSecond, ceilings.live),
    vsRedis: ratio(requestsPerSecond, ceilings.redis),
    capacityAtCeilingMs: ceilings.unitsPerSecond
      ? round((capacity * 1000) / ceilings.unitsPerSecond, 1)
      : null,
    p50Ms: latency.p50,
    p99Ms: latency.p99,
    maxMs: latency.max,
    latencySoldMs: latencyOf(true),
    latencyRefusedMs: latencyOf(false),
    statements,
    roundTrips: raw.wire.roundTrips,
    newConnections: raw.wire.connections,
    statementsPerUnit: perUnit(statements),
    statementsPerRequest: shots.length ? round(statements / shots.length, 3) : null,
    statementsWithFanOut: raw.wireDrained.statements,
    statementsWithFanOutPerUnit: perUnit(raw.wireDrained.statements),
    redisScripts: scripts,
    redisNoscript: noscript,
    redisCommands: redisAll,
    redisCommandsPerRequest: redisAll === null ? null : round(redisAll / shots.length, 2),
    machineCores: raw.wave.machineCores,
    loadAverageBefore: raw.loadAverageBefore,
  };
}
type WaveSummary = ReturnType<typeof summarizeWave>;

function waveNotes(name: string, raw: WaveRaw, check: ReturnType<typeof checkWave>): string[] {
  const out: string[] = [];
  const { bookings, answers, heldBefore, seatsTable } = check.twice;
  if (bookings.length) out.push(`${name}: units in two live bookings: ${bookings.slice(0, 20)}`);
  if (answers.length) out.push(`${name}: units in two 201 answers: ${answers.slice(0, 20)}`);
  if (heldBefore.length) {
    out.push(`${name}: 201s naming units held before the wave: ${heldBefore.slice(0, 20)}`);
  }
  if (seatsTable.length) {
    out.push(`${name}: seats and bookings disagree on: ${seatsTable.slice(0, 20).join(', ')}`);
  }
  if (check.wrongAnswers) {
    out.push(`${name}: ${check.wrongAnswers} 201s whose units differ from the quantity or booking`);
  }
  for (const [key, text] of Object.entries(check.samples)) {
    if (key === '201' || key === SOLD_OUT) continue;
    out.push(`${name}: ${check.statuses[key]} x ${key}, first body: ${text}`);
  }
  if (check.refusedWhileFree > 0) {
    out.push(
      `${name}: ${check.refusedWhileFree} requests refused SOLD_OUT although ${check.freeAtEnd} ` +
        'units were still free at the end of the wave (enough for each of them)',
    );
  }
  const seeds = raw.statements.kinds.seed;
  // One seed per instance each time the count goes missing (start, TTL, FLUSHALL): a handful. Far
  // more means the requests that found it missing each read PostgreSQL (no single flight).
  if (seeds > 10) {
    out.push(
      `${name}: ${seeds} admission-count seeds (SELECT seatlock_units_available) on the wire: ` +
        'each request that found the Redis counter missing read PostgreSQL (no single flight)',
    );
  }
  const count = raw.counter?.value;
  if (count !== undefined && count !== null && count < check.freeAtEnd) {
    out.push(
      `${name}: the Redis admission count ended at ${count} while PostgreSQL had ` +
        `${check.freeAtEnd} units free (it runs low until its TTL, ${raw.counter?.pttlMs} ms left)`,
    );
  }
  if (raw.crash) {
    out.push(
      `${name}: the API died in the wave (exit code ${raw.crash.code}, signal ` +
        `${raw.crash.signal}): ${raw.crash.fatal ?? '-'}; started again for what follows`,
    );
  }
  if (raw.pending) out.push(`${name}: ${raw.pending} outbox messages pending 30 s after it`);
  if (raw.pendingBefore > 0) {
    out.push(`${name}: ${raw.pendingBefore} outbox messages pending before it`);
  }
  if (raw.apiLog.levels.error + raw.apiLog.levels.fatal > 0) {
    out.push(`${name}: API errors: ${JSON.stringify(raw.apiLog.messages)}`);
  }
  return out;
}

function summarizeScenario(
  options: Options,
  raw: ScenarioRaw,
  ceilings: { unitsPerSecond: number | null; live: number | null; redis: number | null },
) {
  const stopped = raw.scenario === 'stopped';
  const check1 = checkWave(raw.wave1, options.capacity, {
    overloadAllowed: stopped,
    freeAtStart: options.capacity,
    liveBefore: [],
  });
  const wave1 = summarizeWave(raw.wave1, options.capacity, check1, ceilings);
  const liveAfterRelease = raw.release.rowsAfter.bookings.filter(
    (b) => b.status === 'held' || b.status === 'confirmed',
  );
  const check2 = raw.wave2
    ? checkWave(raw.wave2, options.capacity, {
        overloadAllowed: false,
        freeAtStart: raw.release.freeAtWave2,
        liveBefore: liveAfterRelease,
      })
    : null;
  const wave2 =
    raw.wave2 && check2 ? summarizeWave(raw.wave2, options.capacity, check2, ceilings) : null;
  // Wave 2 sold what was free, or as many as fit: what is left is smaller than every refusal.
  const wave2Fits =
    wave2 === null
      ? null
      : wave2.unitsSold === raw.release.freeAtWave2 ||
        (wave2.smallestRefusedQuantity !== null && wave2.freeAtEnd < wave2.smallestRefusedQuantity);
  const wave1SoldOut = wave1.unitsSold === options.capacity;
  const anomalies = [
    ...waveNotes('wave 1', raw.wave1, check1),
    ...(raw.wave2 && check2 ? waveNotes('wave 2', raw.wave2, check2) : []),
  ];
  if (!wave1SoldOut) {
    anomalies.push(
      `wave 1 sold ${wave1.unitsSold} of ${options.capacity} units (${wave1.freeAtEnd} left free; ` +
        `smallest refused quantity ${wave1.smallestRefusedQuantity ?? '-'})`,
    );
  }
  if (wave1.unitsSold !== wave1.unitsHeldInTable || wave1.unitsSold !== wave1.unitsInLiveBookings) {
    anomalies.push(
      `wave 1: 201s sold ${wave1.unitsSold} units, the seats table holds ${wave1.unitsHeldInTable}, ` +
        `live bookings ${wave1.unitsInLiveBookings}`,
    );
  }
  if (raw.release.failures > 0) {
    anomalies.push(
      `${raw.release.failures} DELETE /bookings/{id} did not release, first: ${raw.release.firstFailure}`,
    );
  }
  if (raw.release.freeAtWave2 !== raw.release.units + wave1.freeAtEnd) {
    anomalies.push(
      `after the releases ${raw.release.freeAtWave2} units free, expected ${raw.release.units} ` +
        `released + ${wave1.freeAtEnd} left by wave 1`,
    );
  }
  if (wave2 && wave2Fits === false) {
    anomalies.push(
      `wave 2 sold ${wave2.unitsSold} of ${raw.release.freeAtWave2} free units; ${wave2.freeAtEnd} ` +
        `left free while a request for ${wave2.smallestRefusedQuantity ?? '-'} was refused`,
    );
  }
  if (!stopped && (wave1.fallbacks ?? 0) > 0) {
    anomalies.push(`wave 1: ${wave1.fallbacks} holds fell back to PostgreSQL alone with Redis up`);
  }
  if (wave1.redisNoscript) {
    anomalies.push(`wave 1: ${wave1.redisNoscript} EVALSHA answered NOSCRIPT (sent again as EVAL)`);
  }
  if (raw.flush && raw.flush.result !== 'ok') anomalies.push(`FLUSHALL ${raw.flush.result}`);
  if (raw.scenario === 'flush' && !raw.flush) {
    anomalies.push(`no FLUSHALL: wave 1 had fewer than ${options.flushAfter} answers`);
  }
  const waves = [wave1, ...(wave2 ? [wave2] : [])];
  const failures: string[] = [];
  for (const [i, w] of waves.entries()) {
    const name = `wave ${i + 1}`;
    if (w.unitsTwice > 0) failures.push(`${name}: ${w.unitsTwice} units twice`);
    if (w.oversold > 0 || w.unitsSold > (i === 0 ? options.capacity : w.freeAtStart)) {
      failures.push(`${name}: oversold (${w.unitsSold} units sold of ${w.freeAtStart} free)`);
    }
    if (w.wrongAnswers > 0) failures.push(`${name}: ${w.wrongAnswers} wrong 201s`);
    if (w.serverErrors > 0) failures.push(`${name}: ${w.serverErrors} 5xx`);
    if (w.lost > 0) failures.push(`${name}: ${w.lost} requests lost`);
    if (w.apiDied) failures.push(`${name}: the API died`);
    if (w.heldMetric !== null && w.holds !== w.heldMetric) {
      anomalies.push(`${name}: ${w.holds} 201s, seatlock_holds_total{held} rose ${w.heldMetric}`);
    }
  }
  const summary = {
    scenario: raw.scenario,
    wave1,
    release: {
      bookings: raw.release.bookings,
      units: raw.release.units,
      failures: raw.release.failures,
      freeAtWave2: raw.release.freeAtWave2,
    },
    wave2,
    wave1SoldOut,
    wave2Fits,
    flush: raw.flush,
  };
  const details = {
    eventId: raw.eventId,
    wave1: {
      statuses: check1.statuses,
      wire: raw.wave1.wire,
      statements: raw.wave1.statements,
      wireDrained: raw.wave1.wireDrained,
      redisCommandsByName: raw.wave1.redis,
      holdMetrics: raw.wave1.metrics,
      apiLog: raw.wave1.apiLog,
    },
    wave2: raw.wave2 &&
      check2 && {
        statuses: check2.statuses,
        wire: raw.wave2.wire,
        statements: raw.wave2.statements,
        wireDrained: raw.wave2.wireDrained,
        redisCommandsByName: raw.wave2.redis,
        holdMetrics: raw.wave2.metrics,
        apiLog: raw.wave2.apiLog,
      },
  };
  return { ok: failures.length === 0, summary, details, anomalies, failures };
}

function summarize(options: Options, m: Measured) {
  const best = m.unitClaims.runs.reduce<ClaimRun | null>(
    (top, run) => (!top || (run.unitsPerSecond ?? 0) > (top.unitsPerSecond ?? 0) ? run : top),
    null,
  );
  const live = m.live?.perSecond ?? null;
  const ceilings = {
    unitsPerSecond: best?.unitsPerSecond ?? null,
    live,
    redis: m.redisCeiling.perSecond,
  };
  const scenarios = m.scenarios.map((raw) => summarizeScenario(options, raw, ceilings));
  const notes: string[] = [];
  if (m.unitClaims.skipped) notes.push(`no pgbench ceiling: ${m.unitClaims.skipped}`);
  if (m.redisCeiling.skipped) notes.push(`no Redis ceiling: ${m.redisCeiling.skipped}`);
  if (m.live && m.live.errors > 0) notes.push(`/health/live ceiling: ${m.live.errors} errors`);
  for (const crash of m.apiCrashes) {
    notes.push(
      `the API died (exit code ${crash.code}, signal ${crash.signal}): ${crash.fatal ?? '-'}; ` +
        'peak RSS is that of the processes that lived',
    );
  }
  return {
    ok: scenarios.every((s) => s.ok),
    scenarios,
    ceilings: {
      unitClaim: best && {
        script: best.script,
        clients: best.clients,
        unitsPerSecond: best.unitsPerSecond,
        tps: best.tps,
      },
      unitClaimRuns: m.unitClaims.runs,
      live: m.live && {
        perSecond: m.live.perSecond,
        connections: m.live.connections,
        seconds: m.live.seconds,
        p50Ms: m.live.latencyMs.p50,
        errors: m.live.errors,
      },
      redis: m.redisCeiling,
    },
    registrationMs: m.registrationMs,
    peakRssMB: m.peakRssMB,
    apiCrashes: m.apiCrashes,
    notes,
  };
}
type Result = ReturnType<typeof summarize>;

const perSecond = (v: number | null | undefined) =>
  v === null || v === undefined ? '-' : `${fmt(v)}/s`;
const percent = (v: number | null | undefined) =>
  v === null || v === undefined ? '-' : `${fmt(v * 100, 1)} %`;

function waveRows(
  title: string,
  w: WaveSummary,
  r: Result,
  expected: { units: number; exact: boolean; judgeWithoutPg?: boolean },
): TableRow[] {
  const c = r.ceilings;
  const refusals = Object.entries(w.refusals).map(([key, n]) => `${key}: ${fmt(n)}`);
  const claim = c.unitClaim
    ? `${perSecond(c.unitClaim.unitsPerSecond)} (${c.unitClaim.clients} cl.)`
    : '- (no pgbench run)';
  const unitsGoal = expected.exact ? `exactly ${fmt(expected.units)}` : `<= ${fmt(expected.units)}`;
  return [
    ...(w.apiDied
      ? [{ figure: `${title}: THE API DIED IN THE WAVE`, measured: 'yes', goal: 'no' }]
      : []),
    {
      figure: `${title}: units sold (201s) / seats table / live bookings`,
      measured: `${fmt(w.unitsSold)} / ${fmt(w.unitsHeldInTable)} / ${fmt(w.unitsInLiveBookings)}`,
      goal: unitsGoal,
    },
    {
      figure: '  requests / holds (201) / units free at start / free at end',
      measured: `${fmt(w.requests)} / ${fmt(w.holds)} / ${fmt(w.freeAtStart)} / ${fmt(w.freeAtEnd)}`,
    },
    ...(refusals.length ? refusals : ['-']).map((text, i) => ({
      figure: i === 0 ? '  refusals by status and code' : '',
      measured: text,
    })),
    {
      figure: '  units twice / oversold / wrong 201s / lost requests',
      measured: [w.unitsTwice, w.oversold, w.wrongAnswers, w.lost].map((n) => fmt(n)).join(' / '),
      goal: '0 / 0 / 0 / 0',
    },
    {
      figure: '  refused SOLD_OUT while enough units were free (at the end)',
      measured: fmt(w.refusedWhileEnoughFree),
      goal: '0',
    },
    {
      figure: '  losers answered without a PostgreSQL statement (wire, at least)',
      measured: percent(w.withoutPostgres),
      goal: expected.judgeWithoutPg ? `>= ${fmt(WITHOUT_PG_GOAL * 100, 1)} %` : undefined,
    },
    {
      figure: '    metric: sold_out_redis share / sold_out_redis / sold_out_database / fallbacks',
      measured:
        `${percent(w.soldOutRedisShare)} / ${fmt(w.soldOutRedis)} / ${fmt(w.soldOutDatabase)} / ` +
        fmt(w.fallbacks),
    },
    {
      figure: '  Redis admission count before / after (TTL ms) / PostgreSQL free after',
      measured:
        `${w.admissionBefore ?? 'none'} / ${w.admissionAfter ?? 'none'} ` +
        `(${w.admissionAfterTtlMs ?? '-'}) / ${fmt(w.freeAtEnd)}`,
    },
    {
      figure: '  time to sell out (last 201) / whole wave, ms',
      measured: `${fmt(w.sellOutMs, 1)} / ${fmt(w.wallMs, 1)}`,
      ceiling:
        w.capacityAtCeilingMs === null
          ? undefined
          : `${fmt(w.capacityAtCeilingMs, 1)} ms (${fmt(expected.units)} units)`,
    },
    {
      figure: '  units/s to sell out vs pgbench unit claim (physical limit)',
      measured: perSecond(w.unitsPerSecond),
      ceiling: claim,
      ratio: w.vsUnitClaim,
    },
    {
      figure: '  requests/s in the wave vs /health/live (same server)',
      measured: perSecond(w.requestsPerSecond),
      ceiling: c.live ? `${perSecond(c.live.perSecond)} (${c.live.connections} conn.)` : '-',
      ratio: w.vsLive,
    },
    {
      figure: '    vs raw DECRBY on the same redis-server',
      ceiling: `${perSecond(c.redis.perSecond)} (${c.redis.tool}, ${c.redis.clients} cl.)`,
      ratio: w.vsRedis,
    },
    {
      figure: '  latency p50 / p99 ms: all; 201s; refusals',
      measured:
        `${fmt(w.p50Ms, 1)} / ${fmt(w.p99Ms, 1)}; ` +
        `${fmt(w.latencySoldMs.p50, 1)} / ${fmt(w.latencySoldMs.p99, 1)}; ` +
        `${fmt(w.latencyRefusedMs.p50, 1)} / ${fmt(w.latencyRefusedMs.p99, 1)}`,
    },
    {
      figure: '  PostgreSQL statements / round trips on the wire in the wave',
      measured: `${fmt(w.statements)} / ${fmt(w.roundTrips)}`,
    },
    {
      figure: '    hold calls / admission seeds / outbox fan-out / other',
      measured: STATEMENT_KINDS.map((kind) => fmt(w.statementsByKind[kind])).join(' / '),
    },
    {
      figure: '    per unit sold / per request',
      measured: `${fmt(w.statementsPerUnit, 2)} / ${fmt(w.statementsPerRequest, 3)}`,
    },
    {
      figure: '    incl. the outbox fan-out / per unit sold',
      measured: `${fmt(w.statementsWithFanOut)} / ${fmt(w.statementsWithFanOutPerUnit, 2)}`,
    },
    {
      figure: '  Redis: scripts sent (NOSCRIPT) / all commands / per request',
      measured:
        w.redisCommands === null
          ? 'server stopped'
          : `${fmt(w.redisScripts)} (${fmt(w.redisNoscript)}) / ${fmt(w.redisCommands)} / ` +
            fmt(w.redisCommandsPerRequest, 2),
    },
    {
      figure: '  machine busy cores in the wave (of 2) / load average before',
      measured: `${fmt(w.machineCores, 2)} / ${w.loadAverageBefore?.map((n) => n.toFixed(2)).join(' ') ?? '-'}`,
    },
  ];
}

function printReport(options: Options, r: Result): void {
  const out: string[] = [];
  for (const s of r.scenarios) {
    const { wave1, wave2, release } = s.summary;
    const rows: TableRow[] = [
      ...waveRows('wave 1', wave1, r, {
        units: options.capacity,
        exact: s.summary.scenario === 'normal',
        judgeWithoutPg: s.summary.scenario === 'normal',
      }),
    ];
    if (s.summary.flush) {
      rows.push({
        figure: '  FLUSHALL sent after answers / at ms',
        measured: `${fmt(s.summary.flush.afterAnswers)} / ${fmt(s.summary.flush.atMs, 1)}`,
      });
    }
    rows.push(
      { figure: '-' },
      {
        figure: 'released by their owners: bookings / units / free after',
        measured: `${fmt(release.bookings)} / ${fmt(release.units)} / ${fmt(release.freeAtWave2)}`,
      },
    );
    if (wave2) {
      rows.push(
        { figure: '-' },
        ...waveRows('wave 2', wave2, r, { units: release.freeAtWave2, exact: true }),
        {
          figure: '  sold what was free, or as many as fit',
          measured: s.summary.wave2Fits ? 'yes' : 'no',
          goal: 'yes',
        },
      );
    }
    out.push(
      '',
      `Flash sale, ${SCENARIO_TITLES[s.summary.scenario]}: ${fmt(options.customers)} x POST /bookings ` +
        `{section: '${SECTION}', quantity: 1-4} at once on ${fmt(options.capacity)} GA units ` +
        `(seed ${options.seed}); wave 2: ${fmt(wave2?.requests ?? 0)} customers without a booking`,
      renderTable(rows),
      ...s.failures.map((f) => `FAILED ${f}`),
      ...s.anomalies.map((note) => `! ${note}`),
    );
  }
  const ceilingRows: TableRow[] = [
    ...r.ceilings.unitClaimRuns.map((run) => ({
      figure: `pgbench ${run.script}, ${run.clients} clients (units/s, transactions/s)`,
      ceiling: `${perSecond(run.unitsPerSecond)}, ${perSecond(run.tps)}`,
    })),
    {
      figure: `GET /health/live, ${LIVE_CONNECTIONS} connections (p50 ms)`,
      ceiling: r.ceilings.live
        ? `${perSecond(r.ceilings.live.perSecond)} (${fmt(r.ceilings.live.p50Ms, 1)})`
        : '-',
    },
    {
      figure: `raw DECRBY, ${r.ceilings.redis.tool}, ${r.ceilings.redis.clients} clients`,
      ceiling: perSecond(r.ceilings.redis.perSecond),
    },
    { figure: 'API peak RSS (VmHWM) MB', measured: fmt(r.peakRssMB, 1), goal: '<= 250' },
    {
      figure: `registration of ${fmt(options.customers)} customers (not measured), ms`,
      measured: fmt(r.registrationMs),
    },
  ];
  out.push(
    '',
    'Ceilings (same run; pgbench and redis-benchmark with the API stopped)',
    renderTable(ceilingRows),
    'pgbench: one UPDATE of the first free unit rows (FOR UPDATE SKIP LOCKED) per transaction; ' +
      'no booking row, no count, no cap',
    ...r.notes.map((note) => `! ${note}`),
    r.ok ? 'OK' : 'FAILED',
  );
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
  const loadAtStart = loadAverage();
  let result: Result;
  try {
    result = summarize(options, await measure(options));
  } finally {
    await cli
      .withTimeout(cleanUp(), 30_000, 'cleaning up')
      .catch((error: Error) => log(error.message));
  }
  const loadAtEnd = loadAverage();
  printReport(options, result);
  process.stdout.write(
    `load average (1, 5, 15 min): ${loadAtStart?.join(' ') ?? '-'} at the start, ` +
      `${loadAtEnd?.join(' ') ?? '-'} at the end\n`,
  );
  if (options.json) {
    printJson({
      benchmark: 'flash',
      ok: result.ok,
      scenarios: options.scenarios,
      customers: options.customers,
      capacity: options.capacity,
      wave2: options.wave2,
      seed: options.seed,
      section: SECTION,
      summary: Object.fromEntries(result.scenarios.map((s) => [s.summary.scenario, s.summary])),
      ceilings: result.ceilings,
      peakRssMB: result.peakRssMB,
      apiCrashes: result.apiCrashes,
      registrationMs: result.registrationMs,
      loadAverage: { start: loadAtStart, end: loadAtEnd },
      details: Object.fromEntries(result.scenarios.map((s) => [s.summary.scenario, s.details])),
      failures: Object.fromEntries(result.scenarios.map((s) => [s.summary.scenario, s.failures])),
      anomalies: {
        ...Object.fromEntries(result.scenarios.map((s) => [s.summary.scenario, s.anomalies])),
        ceilings: result.notes,
      },
    });
  }
  return result.ok ? 0 : 1;
}

cli.runBenchmarkMain({
  benchmark: 'flash',
  main,
  children,
  totalMs: 40 * 60_000,
  cleanUp,
});
