'use strict';

/*
 * The benchmark suite: every benchmark, one process tree, one table, each figure beside a ceiling
 * measured in the same run.
 *
 *   npm run bench -- [--json] [--duration S] [--warmup S] [--connections N] [--skip LIST]
 *                    [--no-profile] [--profile-dir DIR]
 *
 * It starts its OWN redis-server on a free 127.0.0.1 port (no persistence) and uses only databases
 * named seatlock_bench_all* on the PostgreSQL server of DATABASE_URL (BENCH_DATABASE_PREFIX is
 * handed to the child benchmarks, see bench-support.js), dropped and recreated fresh. In order:
 *
 *   stampede   test/bench/stampede.bench.js --contenders 1000 --json, run as a child: 1,000
 *              concurrent POST /bookings for one seat, LOCK_MODE=redis then LOCK_MODE=off; winners,
 *              PostgreSQL transactions and row writes, p50/p99, the share of contenders the app
 *              answered from Redis alone (seatlock_holds_total{outcome="conflict_redis"}).
 *   http       in this process, against one BUILT API child (LOCK_MODE=redis) on seatlock_bench_all_http,
 *              N connections (--connections, default 64; one undici Client each, no pipelining),
 *              --warmup seconds (2) not counted, then --duration seconds (10) measured:
 *                holds     POST /bookings {one seat nobody else asks for} by 64 customers (201s/s);
 *                ceiling   pgbench (/usr/lib/postgresql/15/bin/pgbench) replaying the SQL of one hold,
 *                          statement for statement (HOLD_SCRIPT below, traced with log_statement from
 *                          the running app), at the same number of clients, for the same time, on the
 *                          same database, with the API idle;
 *                409 path  POST /bookings for a seat already held, by 256 customers in turn (409s/s);
 *                live      GET /health/live on the same server, same connections: its ceiling;
 *                seats     GET /events/{id}/seats of a 1,000-seat event (req/s, p99).
 *              Before each window the outbox is drained (no dispatcher work left over from the last
 *              one) and the API's caches are warm (seat maps, every customer's token).
 *   flow       test/bench/flow.bench.js --json (child): hold -> pay -> confirm bookings/s, PostgreSQL
 *              transactions per booking, its pgbench ceiling, check:ledger.
 *   notify     test/bench/notify.bench.js --json (child): outbox -> webhooks messages/s vs its ceilings.
 *   lock       test/bench/lock.bench.js --json (child): lock pairs/s, ours vs raw Redis and libraries.
 *
 * Peak RSS: every 250 ms the suite reads /proc/<pid>/status (VmHWM, the high-water mark) of every API
 * process below it (its children and the children's children); the peak over the suite is the
 * figure, per benchmark in the JSON. CPU: a sampler splits the machine's busy time between this
 * process tree, the PostgreSQL backends of our databases, and "other processes" (everything else on
 * the machine), over a 5 s quiet check before the suite, over each measured window and over the
 * whole suite; more than 0.25 cores of others is flagged, since the figures then read low.
 *
 * Goals (issue 6): with the lock >= 99.9 % of stampede contenders never reach PostgreSQL; distinct-
 * seat holds >= 0.6x pgbench of the same SQL; the 409 path >= 0.5x /health/live; peak RSS <= 250 MB.
 * Each is printed MET or MISSED. For a missed throughput goal (holds, 409 path) the suite starts the
 * API again under `node --cpu-prof`, repeats that workload, and prints the top self-time functions
 * of the measured window (samples outside it are dropped); the .cpuprofile stays in --profile-dir
 * (default: a temporary directory; *.cpuprofile is git-ignored). A missed goal does not change the
 * exit code; a wrong result (a benchmark failing, two winners, an error answer) does.
 */

const { spawn } = require('node:child_process');
const { randomBytes, randomUUID } = require('node:crypto');
const {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const readline = require('node:readline');
const { setTimeout: sleep } = require('node:timers/promises');
const { Redis } = require('ioredis');
const { Client: PgClient } = require('pg');
const { Agent, Client: HttpClient } = require('undici');
const {
  BenchError,
  CpuSampler,
  commandLine,
  descendantPids,
  freePort,
  latencySummary,
  mapLimit,
  memoryStatus,
  round,
  withTimeout,
  apiNodeOptions,
  localDatabaseUrls,
} = require('./bench-support');
const {
  ChildProcesses,
  hasExited,
  logSince,
  logSnapshot,
  runBenchmarkMain,
  waitHealthy,
} = require('./bench-children');
const { expectStatus, httpCaller } = require('./bench-http');
const {
  PGBENCH_CANDIDATES,
  preparePgbench,
  availableConnections,
  findPgbench,
  parsePgbench,
  withClient,
} = require('./bench-postgres');

const ROOT = path.resolve(__dirname, '..', '..');
const API_MAIN = path.join(ROOT, 'dist', 'apps', 'api', 'apps', 'api', 'src', 'main.js');
const GATEWAY_MARK = path.join('dist', 'apps', 'gateway-sim');
const API_MARK = path.join('dist', 'apps', 'api', 'apps', 'api', 'src', 'main.js');
const PREFIX = 'seatlock_bench_all';
const HTTP_DATABASE = `${PREFIX}_http`;
const CHILD_BENCHMARKS = ['stampede', 'flow', 'notify', 'lock'];
const ALL_PARTS = ['stampede', 'http', 'flow', 'notify', 'lock'];
const HTTP_WINDOWS = ['holds', 'conflicts', 'live', 'seats'];

const GOALS = {
  stampedeShare: 0.999,
  holdsRatio: 0.6,
  conflictRatio: 0.5,
  peakRssMB: 250,
};
/** Other processes using more than this many cores: the figures of that window read low. */
const BUSY_MACHINE_CORES = 0.25;
const SEATS_PER_EVENT = 10_000; // the API's cap per event
/** Distinct seats provided per second of holds (warm-up + window): far above 2 cores' rate. */
const SEAT_BUDGET_PER_SECOND = 2_500;
const PGBENCH_SEAT_BUDGET_PER_SECOND = 6_000;
const CONFLICT_CUSTOMERS = 256;
/** The API's DB_POOL_SIZE (its default, which the suite keeps). */
const API_POOL_SIZE = 10;
const PRICE_CENTS = 5_000;
const HOLD_TTL_SECONDS = 300;
const SETUP_CONCURRENCY = 16;
const RSS_POLL_MS = 250;
const PROFILE_SECONDS = 6;

const TIMEOUTS = {
  total: 60 * 60_000,
  ready: 60_000,
  request: 30_000,
  stop: 15_000,
  child: 25 * 60_000,
  drain: 60_000,
};

const USAGE = `Usage: npm run bench -- [options]

  --json             also print one JSON object as the last line of stdout
  --duration S       measured seconds of each HTTP window and of pgbench (default 10)
  --warmup S         warm-up seconds before each HTTP window, not counted (default 2)
  --connections N    connections of the HTTP windows and pgbench clients (default 64)
  --flow-duration S  the flow benchmark's measured window (default 15)
  --quick            a smoke test: 3 s windows, and short notify/lock runs (figures are rough)
  --wait-quiet M     before starting, wait up to M minutes (checking every minute) until other
                     processes use at most ${BUSY_MACHINE_CORES} cores
  --skip LIST        comma-separated parts to leave out: ${ALL_PARTS.join(',')}
  --no-profile       no CPU profile for missed goals
  --profile LIST     also profile these HTTP windows: ${HTTP_WINDOWS.join(',')}
  --profile-dir DIR  where the .cpuprofile files go (default: a temporary directory)

Environment: DATABASE_URL (only its server is used; the databases are ${PREFIX}*),
a redis-server binary on PATH (the suite runs its own), pgbench (${PGBENCH_CANDIDATES[0]}).`;

// ---------------------------------------------------------------------------------------------
// Small helpers

function log(message) {
  process.stderr.write(`[all] ${message}\n`);
}

function parseArgs(argv) {
  const options = {
    json: false,
    duration: 10,
    warmup: 2,
    connections: 64,
    flowDuration: 15,
    skip: new Set(),
    quick: false,
    waitQuiet: 0,
    profile: true,
    profileAlso: [],
    profileDir: null,
  };
  const number = (name, raw, min, max) => {
    const n = Number(raw);
    if (raw === undefined || !Number.isFinite(n) || n < min || n > max) {
      throw new BenchError(`${name} needs a number from ${min} to ${max}, got ${raw}`);
    }
    return n;
  };
  for (let i = 0; i < argv.length; i += 1) {
    const [name, inline] = argv[i].includes('=') ? argv[i].split(/=(.*)/s) : [argv[i], undefined];
    const take = () => (inline !== undefined ? inline : argv[(i += 1)]);
    if (name === '--json') options.json = true;
    else if (name === '--no-profile') options.profile = false;
    else if (name === '--quick') options.quick = true;
    else if (name === '--wait-quiet') options.waitQuiet = number(name, take(), 0, 240);
    else if (name === '--help' || name === '-h') {
      process.stdout.write(`${USAGE}\n`);
      process.exit(0);
    } else if (name === '--duration') options.duration = number(name, take(), 1, 600);
    else if (name === '--warmup') options.warmup = number(name, take(), 0, 60);
    else if (name === '--connections') {
      options.connections = Math.round(number(name, take(), 1, 500));
    } else if (name === '--flow-duration') options.flowDuration = number(name, take(), 1, 600);
    else if (name === '--profile-dir') options.profileDir = path.resolve(take() || '.');
    else if (name === '--profile') {
      for (const window of String(take() || '')
        .split(',')
        .filter(Boolean)) {
        if (!HTTP_WINDOWS.includes(window)) throw new BenchError(`--profile: unknown ${window}`);
        options.profileAlso.push(window);
      }
    } else if (name === '--skip') {
      for (const part of String(take() || '')
        .split(',')
        .filter(Boolean)) {
        if (!ALL_PARTS.includes(part)) throw new BenchError(`--skip: unknown part ${part}`);
        options.skip.add(part);
      }
    } else throw new BenchError(`unknown argument ${argv[i]}\n${USAGE}`);
  }
  return options;
}

/** MiB (what /proc reports, in KiB) to MB (10^6 bytes), the goal's unit. */
const toMB = (mib) => (mib === null || mib === undefined ? null : round(mib * 1.048576, 1));

const ratio = (value, ceiling) =>
  value === null || value === undefined || !ceiling ? null : round(value / ceiling, 3);

// ---------------------------------------------------------------------------------------------
// Child processes: everything this suite starts is tracked here and stopped on any exit

const children = new ChildProcesses({ cwd: ROOT, stopTimeoutMs: TIMEOUTS.stop, log });
const call = httpCaller({ timeoutMs: TIMEOUTS.request });

/** Waits for the API's readiness probe. */
function waitReady(api, agent) {
  return waitHealthy(
    api,
    () => call(agent, api.url, 'GET', '/health/ready', { timeoutMs: 2_000 }),
    TIMEOUTS.ready,
  );
}

// ---------------------------------------------------------------------------------------------
// Our own redis-server

async function startRedis() {
  const port = await freePort();
  const proc = children.command('redis-server', [
    'redis-server',
    ...['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
  ]);
  const url = `redis://127.0.0.1:${port}`;
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (hasExited(proc)) throw new BenchError('redis-server exited at start (is it installed?)');
    const probe = new Redis(url, {
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
      connectTimeout: 1_000,
    });
    probe.on('error', () => undefined);
    try {
      await probe.connect();
      await probe.ping();
      const info = await probe.info('server');
      proc.version = /redis_version:(\S+)/.exec(info)?.[1] ?? null;
      return { proc, url, port };
    } catch {
      await sleep(100);
    } finally {
      probe.disconnect();
    }
  }
  throw new BenchError(`redis-server on port ${port} did not answer within 10 s`);
}

// ---------------------------------------------------------------------------------------------
// Peak RSS of every API process below this one

class RssWatcher {
  constructor() {
    this.peaks = new Map(); // pid -> { kind, part, peak, rss }
    this.part = 'setup';
    this.timer = null;
  }

  start() {
    this.timer = setInterval(() => this.sample(), RSS_POLL_MS);
    this.timer.unref();
  }

  sample() {
    for (const pid of descendantPids(process.pid)) {
      let entry = this.peaks.get(pid);
      if (!entry) {
        const cmd = commandLine(pid) || '';
        const kind = cmd.includes(API_MARK) ? 'api' : cmd.includes(GATEWAY_MARK) ? 'gateway' : null;
        if (!kind) continue;
        entry = { pid, kind, part: this.part, peak: 0, rss: 0 };
        this.peaks.set(pid, entry);
      }
      const memory = memoryStatus(pid);
      if (!memory) continue;
      entry.peak = Math.max(entry.peak, memory.peak ?? 0);
      entry.rss = memory.rss ?? entry.rss;
    }
  }

  stop() {
    clearInterval(this.timer);
  }

  summary() {
    const api = [...this.peaks.values()].filter((entry) => entry.kind === 'api');
    const byPart = {};
    for (const entry of api) {
      byPart[entry.part] ??= { processes: 0, peakMB: 0 };
      byPart[entry.part].processes += 1;
      byPart[entry.part].peakMB = Math.max(byPart[entry.part].peakMB, toMB(entry.peak));
    }
    const gateway = [...this.peaks.values()].filter((entry) => entry.kind === 'gateway');
    return {
      apiPeakMB: api.length ? toMB(Math.max(...api.map((entry) => entry.peak))) : null,
      apiProcesses: api.length,
      byPart,
      gatewayPeakMB: gateway.length ? toMB(Math.max(...gateway.map((entry) => entry.peak))) : null,
      pollMs: RSS_POLL_MS,
    };
  }
}

// ---------------------------------------------------------------------------------------------
// CPU: this process tree and our databases' backends vs everything else

function suiteSampler(admin) {
  let ours = new Set();
  let backends = new Map();
  return new CpuSampler({
    intervalMs: 1000,
    prepare: async () => {
      ours = descendantPids(process.pid);
      if (admin) {
        const { rows } = await admin
          .query(`SELECT pid, datname FROM pg_stat_activity WHERE datname LIKE $1`, [`${PREFIX}%`])
          .catch(() => ({ rows: [] }));
        backends = new Map(rows.map((row) => [Number(row.pid), row.datname]));
      }
    },
    classify: (proc) => {
      if (proc.pid === process.pid) return 'suite: load generator (this node)';
      if (backends.has(proc.pid)) return 'suite: PostgreSQL backends of our databases';
      if (ours.has(proc.pid)) {
        if (proc.comm === 'redis-server') return 'suite: redis-server';
        if (proc.comm === 'pgbench') return 'suite: pgbench';
        return 'suite: API and child processes';
      }
      return null;
    },
  });
}

async function quietCheck(seconds) {
  const sampler = suiteSampler(null);
  await sampler.start();
  await sleep(seconds * 1000);
  const cpu = await sampler.stop();
  return { seconds, machineCores: cpu.machineCores, otherCores: cpu.otherCores };
}

// ---------------------------------------------------------------------------------------------
// The child benchmarks

function runBenchmark(name, args, env, rss) {
  const script = path.join(__dirname, `${name}.bench.js`);
  log(`${name}: node ${path.relative(ROOT, script)} ${args.join(' ')}`);
  rss.part = name;
  const started = Date.now();
  const child = spawn(process.execPath, [script, ...args, '--json'], {
    cwd: ROOT,
    env: { ...process.env, ...env, BENCH_DATABASE_PREFIX: PREFIX },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const proc = children.track(name, child);
  let stdout = '';
  child.stdout.on('data', (chunk) => (stdout += chunk));
  readline.createInterface({ input: child.stderr }).on('line', (line) => {
    process.stderr.write(`  ${line}\n`);
  });
  return withTimeout(proc.exited, TIMEOUTS.child, `the ${name} benchmark`).then(
    ({ code, signal }) => {
      const lines = stdout.trimEnd().split('\n');
      let report;
      try {
        report = JSON.parse(lines[lines.length - 1]);
      } catch {
        report = null;
      }
      return {
        name,
        code,
        signal,
        seconds: round((Date.now() - started) / 1000, 1),
        report,
        table: lines.slice(0, -1).join('\n'),
      };
    },
  );
}

// ---------------------------------------------------------------------------------------------
// The API of the HTTP part, as a child process

function startApi({ name, port, databaseUrl, redisUrl, adminToken, profileDir }) {
  const profiling = profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [];
  const proc = children.node(
    name,
    API_MAIN,
    {
      ...process.env,
      DATABASE_URL: databaseUrl,
      REDIS_URL: redisUrl,
      PORT: String(port),
      HOST: '127.0.0.1',
      LOCK_MODE: 'redis',
      // Holds only: no payment gateway needed, so the API must not start a simulator of its own.
      GATEWAY_URL: 'http://127.0.0.1:9',
      ADMIN_TOKEN: adminToken,
      LOG_LEVEL: 'warn',
      MIGRATIONS_RUN: 'true',
      HOLD_TTL_SECONDS: String(HOLD_TTL_SECONDS),
      // Nothing expires during the run; the sweeper's once-a-second query would only add noise.
      SWEEP_INTERVAL_MS: '3600000',
      RECONCILE_INTERVAL_MS: '3600000',
      RATE_LIMIT_PER_MINUTE: '0',
    },
    [...profiling, ...apiNodeOptions()],
  );
  proc.url = `http://127.0.0.1:${port}`;
  return proc;
}

async function createEvent(agent, api, adminToken, name, rows, seatsPerRow) {
  const event = expectStatus(
    await call(agent, api.url, 'POST', '/admin/events', {
      token: adminToken,
      body: {
        name: `${name} ${new Date().toISOString()}`,
        startsAt: '2027-06-01T19:30:00Z',
        venue: 'Bench Arena',
        currency: 'EUR',
        sections: [{ name: 'Floor', rows, seatsPerRow, priceCents: PRICE_CENTS }],
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

async function registerCustomers(agent, api, count, tag) {
  return mapLimit(
    Array.from({ length: count }, (_, i) => i),
    SETUP_CONCURRENCY,
    async (i) =>
      expectStatus(
        await call(agent, api.url, 'POST', '/customers', {
          body: { email: `bench-all-${tag}-${i}@example.test`, name: `Bench ${tag} ${i}` },
        }),
        201,
        'POST /customers',
      ),
  );
}

/** Every customer's token and every event's seat map into the API's caches. */
async function warmCaches(agent, api, customers, events) {
  for (const event of events) {
    expectStatus(await call(agent, api.url, 'GET', `/events/${event.id}/seats`), 200, 'seats');
  }
  await mapLimit(customers, SETUP_CONCURRENCY, async (customer) =>
    expectStatus(
      await call(agent, api.url, 'GET', '/bookings', { token: customer.token }),
      200,
      'GET /bookings',
    ),
  );
}

async function drainOutbox(databaseUrl) {
  const started = Date.now();
  return withClient(databaseUrl, async (client) => {
    for (;;) {
      const { rows } = await client.query(
        `SELECT count(*)::int AS n FROM outbox_messages WHERE status = 'pending'`,
      );
      if (rows[0].n === 0 || Date.now() - started > TIMEOUTS.drain) {
        return { pending: rows[0].n, waitedMs: Date.now() - started };
      }
      await sleep(250);
    }
  });
}

// ---------------------------------------------------------------------------------------------
// The load: N connections, each looping one request at a time

/**
 * `next(worker)` answers the request a worker sends next ({method, path, token, body}) or null when
 * there is nothing left (the worker stops). Answers count when they arrive inside the measured
 * window; `expected` is the status a correct answer has, anything else is an error.
 */
async function runLoad(api, { connections, warmup, duration, next, expected, sampler }) {
  const clients = Array.from(
    { length: connections },
    () =>
      new HttpClient(api.url, {
        pipelining: 1,
        keepAliveTimeout: 60_000,
        keepAliveMaxTimeout: 60_000,
        headersTimeout: TIMEOUTS.request,
        bodyTimeout: TIMEOUTS.request,
      }),
  );
  const statuses = {};
  const samples = {};
  const latencies = [];
  let counted = 0;
  let errors = 0;
  let exhausted = false;
  const start = performance.now();
  const windowStart = start + warmup * 1000;
  const end = windowStart + duration * 1000;
  let windowBegan = null;
  let samplerStarted = null;
  const beginWindow = async () => {
    windowBegan = { hr: process.hrtime.bigint() };
    if (sampler) await sampler.start();
  };
  const timer = setTimeout(() => {
    samplerStarted = beginWindow();
  }, warmup * 1000);
  const worker = async (client, index) => {
    for (;;) {
      const now = performance.now();
      if (now >= end) return;
      const job = next(index);
      if (!job) {
        exhausted = true;
        return;
      }
      const headers = {};
      if (job.token) headers.authorization = `Bearer ${job.token}`;
      if (job.body !== undefined) headers['content-type'] = 'application/json';
      const sent = performance.now();
      let status;
      let text = '';
      try {
        const response = await client.request({
          method: job.method,
          path: job.path,
          headers,
          body: job.body,
        });
        status = response.statusCode;
        if (status === expected) await response.body.dump();
        else text = await response.body.text();
      } catch (error) {
        status = `error:${error.code || error.name}`;
        text = error.message;
      }
      const done = performance.now();
      if (done < windowStart || done > end) continue;
      statuses[status] = (statuses[status] || 0) + 1;
      if (status === expected) {
        counted += 1;
        latencies.push(done - sent);
      } else {
        errors += 1;
        samples[status] ??= String(text).slice(0, 300);
      }
    }
  };
  await Promise.all(clients.map((client, i) => worker(client, i)));
  clearTimeout(timer);
  const windowEnd = process.hrtime.bigint();
  if (samplerStarted) await samplerStarted;
  const cpu = sampler && windowBegan ? await sampler.stop() : null;
  await Promise.all(clients.map((client) => client.close().catch(() => undefined)));
  const seconds = Math.min(duration, Math.max(0.001, (performance.now() - windowStart) / 1000));
  return {
    connections,
    seconds: round(seconds, 2),
    ok: counted,
    perSecond: round(counted / seconds, 1),
    latencyMs: latencySummary(latencies),
    statuses,
    errors,
    errorSamples: samples,
    exhausted,
    cpu,
    window: windowBegan ? { startHr: windowBegan.hr, endHr: windowEnd } : null,
  };
}

// ---------------------------------------------------------------------------------------------
// pgbench: the SQL of one hold, as the API sends it

/**
 * One hold, statement for statement as BookingService.hold -> writeHold sends it (traced with
 * log_statement = 'all' on the running app): TypeORM's START TRANSACTION, CatalogService.
 * freeExpiredHolds, CatalogService.holdSeats with the Redis token as $4, the booking INSERT, the
 * timeline INSERT and NotificationService.enqueue (outbox row + pg_notify in one statement), COMMIT.
 * pgbench variables stand in for the bound values; each cycle holds a seat of its own,
 * P<client * k + seq>, with a fence above every stored one (seats start at fence 0).
 */
const HOLD_SCRIPT = String.raw`\set seq :seq + 1
\set n :client_id * :k + :seq
\set bn (:client_id + 1) * 1000000000 + :runbase + :seq
\set tok :fencebase + :bn
START TRANSACTION;
UPDATE seats s SET status = 'free', booking_id = NULL, held_until = NULL
  FROM (SELECT label, booking_id FROM seats
        WHERE event_id = :ev AND label = ANY(ARRAY['P' || :n]) AND status = 'held' AND held_until <= now()
        FOR UPDATE) old
  WHERE s.event_id = :ev AND s.label = old.label
  RETURNING old.booking_id;
WITH token AS (
  SELECT COALESCE(:tok::bigint, greatest(max(fence) + 1,
           (extract(epoch FROM clock_timestamp()) * 1000000)::bigint)) AS value
  FROM seats WHERE event_id = :ev AND label = ANY(ARRAY['P' || :n]))
UPDATE seats s
  SET status = 'held', booking_id = lpad(to_hex(:bn::bigint), 32, '0')::uuid, fence = token.value,
      held_until = now() + make_interval(secs => ${HOLD_TTL_SECONDS})
  FROM token
  WHERE s.event_id = :ev AND s.label = ANY(ARRAY['P' || :n]) AND s.status = 'free' AND s.fence < token.value
  RETURNING s.label, s.held_until, s.fence AS fence \gset
INSERT INTO bookings (id, customer_id, event_id, status, seat_labels, amount_cents, currency, expires_at, fence)
  VALUES (lpad(to_hex(:bn::bigint), 32, '0')::uuid, lpad(to_hex(:client_id::bigint + 1), 32, 'c')::uuid,
          :ev, 'held', ARRAY['P' || :n], ${PRICE_CENTS}, 'EUR', now() + interval '${HOLD_TTL_SECONDS} seconds', :fence)
  RETURNING id, customer_id, event_id, status, seat_labels, amount_cents, currency, expires_at, fence, created_at;
INSERT INTO booking_timeline (booking_id, type, detail)
  VALUES (lpad(to_hex(:bn::bigint), 32, '0')::uuid, 'booking.held', :heldtext);
WITH inserted AS (
  INSERT INTO outbox_messages (id, topic, customer_id, aggregate_id, payload)
  VALUES (gen_random_uuid(), 'booking.held', lpad(to_hex(:client_id::bigint + 1), 32, 'c')::uuid,
          lpad(to_hex(:bn::bigint), 32, '0')::uuid, :payload) RETURNING id
)
SELECT pg_notify('outbox', '') FROM inserted;
COMMIT;
`;

function holdConstants(eventId, seatsPerClient, run) {
  const booking = {
    booking: {
      id: randomUUID(),
      seats: ['A1'],
      status: 'held',
      eventId,
      currency: 'EUR',
      createdAt: new Date().toISOString(),
      expiresAt: new Date().toISOString(),
      amountCents: PRICE_CENTS,
      fencingToken: '1795372520742939',
    },
  };
  return {
    ev: eventId,
    k: String(seatsPerClient),
    seq: '0',
    // Booking ids of one pgbench run never collide with another's (below 10^8 holds per client).
    runbase: String(run * 100_000_000),
    fencebase: '1000000000000000',
    payload: JSON.stringify(booking),
    heldtext: `Held A1 until ${new Date().toISOString()} (fencing token 1795372520742939)`,
  };
}

async function pgbenchHolds(options, urls, admin, wanted, runIndex) {
  const binary = findPgbench();
  if (!binary) return { skipped: 'no pgbench found (Debian: postgresql-client-15)' };
  const free = (await availableConnections(admin)) - 5;
  const clients = Math.max(1, Math.min(wanted, free));
  const seconds = Math.max(1, Math.round(options.duration));
  const seatsPerClient = Math.ceil((PGBENCH_SEAT_BUDGET_PER_SECOND * seconds) / clients) + 100;
  log(`http: pgbench hold ceiling, ${clients} clients x ${seconds} s`);
  const eventId = await withTimeout(
    preparePgbench(urls.http, { clients, seatsPerClient, priceCents: PRICE_CENTS }),
    120_000,
    'preparing the pgbench seats',
  );
  const dir = mkdtempSync(path.join(os.tmpdir(), 'seatlock-all-pgbench-'));
  try {
    const script = path.join(dir, 'hold.sql');
    writeFileSync(script, HOLD_SCRIPT);
    const url = new URL(urls.http);
    const defines = Object.entries(holdConstants(eventId, seatsPerClient, runIndex)).flatMap(
      ([name, value]) => ['-D', `${name}=${value}`],
    );
    const threads = Math.min(clients, os.cpus().length);
    const args = [
      ...['-n', '-M', 'extended', '-c', String(clients), '-j', String(threads)],
      ...['-T', String(seconds), '-f', script, ...defines],
      ...['-h', url.hostname, '-p', url.port || '5432'],
      ...['-U', decodeURIComponent(url.username || 'postgres'), HTTP_DATABASE],
    ];
    const env = { ...process.env, PGPASSWORD: decodeURIComponent(url.password || '') };
    const sampler = suiteSampler(admin);
    await sampler.start();
    const run = await children.runToEnd('pgbench', [binary, ...args], env, (seconds + 60) * 1000);
    const cpu = await sampler.stop();
    const { tps, processed, failed, latencyAverageMs, aborted } = parsePgbench(run.output);
    const held = await withClient(urls.http, async (client) => {
      const { rows } = await client.query(
        `SELECT count(*)::int AS n FROM seats WHERE event_id = $1 AND status = 'held'`,
        [eventId],
      );
      return rows[0].n;
    });
    const problems = [];
    if (run.code !== 0) problems.push(`pgbench exited with ${run.code ?? run.signal}`);
    if (aborted) problems.push('a pgbench client aborted');
    if (failed) problems.push(`${failed} failed pgbench transactions`);
    if (processed !== null && held < processed) {
      problems.push(`${processed} holds but only ${held} seats held`);
    }
    return {
      binary,
      clients,
      threads,
      seconds,
      queryMode: 'extended',
      holdsPerSecond: tps === null ? null : round(tps, 1),
      holds: processed,
      seatsHeld: held,
      latencyAverageMs,
      cpu,
      problems,
      outputTail: problems.length ? run.output.split('\n').slice(-15).join('\n') : undefined,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// The HTTP part

/** Seats handed out one at a time, round-robin over the events. */
function seatQueue(events) {
  const seats = [];
  const longest = Math.max(0, ...events.map((event) => event.labels.length));
  for (let i = 0; i < longest; i += 1) {
    for (const event of events) {
      if (i < event.labels.length)
        seats.push(JSON.stringify({ eventId: event.id, seatIds: [event.labels[i]] }));
    }
  }
  let next = 0;
  return { take: () => (next < seats.length ? seats[next++] : null), used: () => next };
}

/** The workloads of the HTTP part by name, as `runLoad` options. */
function workloads(state) {
  return {
    holds: () => {
      const queue = seatQueue(state.holdEvents.splice(0, state.eventsPerRun));
      return {
        expected: 201,
        next: (worker) => {
          const body = queue.take();
          if (!body) return null;
          const customer = state.holdCustomers[worker % state.holdCustomers.length];
          return { method: 'POST', path: '/bookings', token: customer.token, body };
        },
      };
    },
    conflicts: () => {
      let turn = 0;
      const body = JSON.stringify({ eventId: state.seatsEvent.id, seatIds: [state.heldSeat] });
      return {
        expected: 409,
        next: () => {
          const customer = state.conflictCustomers[turn++ % state.conflictCustomers.length];
          return { method: 'POST', path: '/bookings', token: customer.token, body };
        },
      };
    },
    live: () => ({ expected: 200, next: () => ({ method: 'GET', path: '/health/live' }) }),
    seats: () => ({
      expected: 200,
      next: () => ({ method: 'GET', path: `/events/${state.seatsEvent.id}/seats` }),
    }),
  };
}

async function measure(name, api, state, options, urls, admin, { profiling = false } = {}) {
  const drained = await drainOutbox(urls.http);
  const workload = workloads(state)[name]();
  log(
    `http: ${name}${profiling ? ' (profiled)' : ''}, ${options.connections} connections, ` +
      `${options.warmup} s warm-up + ${profiling ? PROFILE_SECONDS : options.duration} s`,
  );
  const result = await runLoad(api, {
    connections: options.connections,
    warmup: options.warmup,
    duration: profiling ? PROFILE_SECONDS : options.duration,
    next: workload.next,
    expected: workload.expected,
    sampler: suiteSampler(admin),
  });
  result.outboxPendingBefore = drained.pending;
  const memory = memoryStatus(api.child.pid);
  result.apiMemoryAfter = memory ? { rssMB: toMB(memory.rss), peakMB: toMB(memory.peak) } : null;
  return result;
}

async function httpPart(options, urls, redisUrl, admin, rss) {
  rss.part = 'http';
  const adminToken = `bench-admin-${randomBytes(16).toString('hex')}`;
  log(`http: fresh database ${HTTP_DATABASE}`);
  await withClient(urls.admin, async (client) => {
    await client.query(`DROP DATABASE IF EXISTS ${HTTP_DATABASE} WITH (FORCE)`);
    await client.query(`CREATE DATABASE ${HTTP_DATABASE}`);
  });
  const agent = new Agent({ connections: SETUP_CONCURRENCY + 8 });
  const result = { settings: {}, windows: {}, profiles: {} };
  let api = null;
  try {
    const port = await freePort();
    api = startApi({ name: 'API', port, databaseUrl: urls.http, redisUrl, adminToken });
    await waitReady(api, agent);
    result.apiPid = api.child.pid;
    const memoryAt = () => {
      const memory = memoryStatus(api.child.pid);
      return memory ? { rssMB: toMB(memory.rss), peakMB: toMB(memory.peak) } : null;
    };
    result.apiMemoryAtReady = memoryAt();

    // Enough distinct seats for the measured run and a profiled one.
    const perRun = SEAT_BUDGET_PER_SECOND * (options.warmup + options.duration);
    const eventsPerRun = Math.ceil(perRun / SEATS_PER_EVENT);
    const profileEvents = Math.ceil(
      (SEAT_BUDGET_PER_SECOND * (options.warmup + PROFILE_SECONDS)) / SEATS_PER_EVENT,
    );
    log(`http: ${eventsPerRun + profileEvents} events of ${SEATS_PER_EVENT} seats, customers`);
    const holdEvents = [];
    for (let i = 0; i < eventsPerRun + profileEvents; i += 1) {
      holdEvents.push(await createEvent(agent, api, adminToken, `Holds ${i + 1}`, 100, 100));
    }
    const seatsEvent = await createEvent(agent, api, adminToken, 'Availability', 10, 100);
    const holdCustomers = await registerCustomers(agent, api, options.connections, 'h');
    const conflictCustomers = await registerCustomers(agent, api, CONFLICT_CUSTOMERS, 'c');
    const state = {
      holdEvents,
      eventsPerRun,
      seatsEvent,
      holdCustomers,
      conflictCustomers,
      heldSeat: seatsEvent.labels[0],
    };
    // The seat the 409 path hammers: held by someone who is not among the hammering customers.
    const [owner] = await registerCustomers(agent, api, 1, 'owner');
    expectStatus(
      await call(agent, api.url, 'POST', '/bookings', {
        token: owner.token,
        body: { eventId: seatsEvent.id, seatIds: [state.heldSeat] },
      }),
      201,
      'holding the hammered seat',
    );
    await warmCaches(
      agent,
      api,
      [...holdCustomers, ...conflictCustomers],
      [...holdEvents, seatsEvent],
    );
    result.apiMemoryAfterSetup = memoryAt();
    result.settings = {
      connections: options.connections,
      warmupSeconds: options.warmup,
      durationSeconds: options.duration,
      holdEvents: holdEvents.length,
      seatsPerHoldEvent: SEATS_PER_EVENT,
      holdCustomers: holdCustomers.length,
      conflictCustomers: conflictCustomers.length,
      availabilitySeats: seatsEvent.labels.length,
      apiEnv: { LOCK_MODE: 'redis', LOG_LEVEL: 'warn', RATE_LIMIT_PER_MINUTE: 0, DB_POOL_SIZE: 10 },
    };

    const logBefore = logSnapshot(api);
    for (const name of HTTP_WINDOWS) {
      result.windows[name] = await measure(name, api, state, options, urls, admin);
      delete result.windows[name].window;
    }
    const { levels, messages } = logSince(api, logBefore);
    result.apiLog = {
      warn: levels.warn,
      error: levels.error,
      fatal: levels.fatal,
      top: Object.entries(messages).slice(0, 6),
    };
    result.holdsRecorded = await withClient(urls.http, async (client) => {
      const { rows } = await client.query(
        `SELECT count(*)::int AS bookings,
                count(DISTINCT (event_id, seat_labels))::int AS distinct_seats
         FROM bookings WHERE status = 'held'`,
      );
      return rows[0];
    });

    // The ceiling: pgbench with the same SQL, the API idle (its pool's sessions still open), with
    // as many clients as the load had connections and with as many as the API's pool has
    // sessions; the better of the two is the ceiling (64 backends on 2 cores can be the slower).
    const runs = [];
    for (const clients of [...new Set([options.connections, API_POOL_SIZE])]) {
      runs.push(
        await pgbenchHolds(options, urls, admin, clients, runs.length).catch((error) => ({
          skipped: `the pgbench ceiling failed: ${error.message}`,
        })),
      );
    }
    const measured = runs.filter((run) => run.holdsPerSecond);
    result.pgbench = measured.length
      ? {
          ...measured.reduce((best, run) =>
            run.holdsPerSecond > best.holdsPerSecond ? run : best,
          ),
          runs: runs.map((run) => ({
            clients: run.clients,
            holdsPerSecond: run.holdsPerSecond ?? null,
            latencyAverageMs: run.latencyAverageMs ?? null,
            otherCores: run.cpu?.otherCores ?? null,
            problems: run.problems ?? [run.skipped],
          })),
        }
      : runs[0];
    result.exit = await children.stop(api);
    api = null;

    result.state = state;
    return result;
  } catch (error) {
    if (api && api.tail.length) log(`last API output:\n${api.tail.join('\n')}`);
    throw error;
  } finally {
    await agent.close().catch(() => undefined);
    if (api) await children.stop(api);
  }
}

// ---------------------------------------------------------------------------------------------
// CPU profiles of a missed goal's hot path

/** Top self-time functions of the samples inside [startUs, endUs] (the process's monotonic clock). */
function summarizeProfile(file, window) {
  const profile = JSON.parse(readFileSync(file, 'utf8'));
  const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
  const selfUs = new Map();
  let t = profile.startTime;
  let total = 0;
  let inWindow = 0;
  for (let i = 0; i < profile.samples.length; i += 1) {
    t += profile.timeDeltas[i];
    const delta = profile.timeDeltas[i + 1] ?? 0;
    if (window && (t < window.startUs || t > window.endUs)) continue;
    inWindow += 1;
    selfUs.set(profile.samples[i], (selfUs.get(profile.samples[i]) || 0) + delta);
    total += delta;
  }
  const byFunction = new Map();
  const byArea = new Map();
  let idle = 0;
  for (const [id, us] of selfUs) {
    const frame = nodes.get(id).callFrame;
    const name = frame.functionName || '(anonymous)';
    if (name === '(idle)') {
      idle += us;
      continue;
    }
    const url = frame.url.replace(/^file:\/\//, '');
    const short = url.startsWith(ROOT) ? path.relative(ROOT, url) : url;
    const key = `${name} ${short ? `${short}:${frame.lineNumber + 1}` : ''}`.trim();
    byFunction.set(key, (byFunction.get(key) || 0) + us);
    const area = !short
      ? name
      : short.startsWith('node:')
        ? 'node: core'
        : /node_modules\/((@[^/]+\/)?[^/]+)/.exec(short)?.[1] ||
          short.split('/').slice(0, 3).join('/');
    byArea.set(area, (byArea.get(area) || 0) + us);
  }
  const busy = total - idle;
  const top = (map, n) =>
    [...map]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([name, us]) => ({
        name,
        ms: round(us / 1000, 1),
        pctOfBusy: round((us / busy) * 100, 1),
      }));
  return {
    file,
    samples: profile.samples.length,
    samplesInWindow: inWindow,
    windowMs: round(total / 1000, 1),
    busyMs: round(busy / 1000, 1),
    idlePct: total ? round((idle / total) * 100, 1) : null,
    topFunctions: top(byFunction, 15),
    topAreas: top(byArea, 12),
  };
}

async function profilePart(names, http, options, urls, redisUrl, admin, rss) {
  rss.part = 'profile';
  const dir = options.profileDir || mkdtempSync(path.join(os.tmpdir(), 'seatlock-bench-profiles-'));
  mkdirSync(dir, { recursive: true });
  const agent = new Agent({ connections: 8 });
  const profiles = {};
  try {
    for (const name of names) {
      const runDir = mkdtempSync(path.join(dir, `${name}-`));
      const port = await freePort();
      const api = startApi({
        name: `API (profiled, ${name})`,
        port,
        databaseUrl: urls.http,
        redisUrl,
        adminToken: `bench-admin-${randomBytes(16).toString('hex')}`,
        profileDir: runDir,
      });
      try {
        await waitReady(api, agent);
        const state = http.state;
        state.eventsPerRun = state.holdEvents.length;
        await warmCaches(
          agent,
          api,
          [...state.holdCustomers, ...state.conflictCustomers],
          [...state.holdEvents, state.seatsEvent],
        );
        const run = await measure(name, api, state, options, urls, admin, { profiling: true });
        api.child.kill('SIGUSR2');
        await withTimeout(api.exited, 30_000, 'the profiled API writing its profile');
        const file = readdirSync(runDir).find((entry) => entry.endsWith('.cpuprofile'));
        if (!file) throw new BenchError(`no .cpuprofile in ${runDir}`);
        const window = run.window
          ? { startUs: Number(run.window.startHr / 1000n), endUs: Number(run.window.endHr / 1000n) }
          : null;
        profiles[name] = {
          perSecondProfiled: run.perSecond,
          ...summarizeProfile(path.join(runDir, file), window),
        };
      } catch (error) {
        profiles[name] = { error: error.message };
      } finally {
        await children.stop(api);
      }
    }
  } finally {
    await agent.close().catch(() => undefined);
  }
  return { dir, profiles };
}

// ---------------------------------------------------------------------------------------------
// Report

function verdict(met) {
  return met === null ? 'n/a' : met ? 'MET' : 'MISSED';
}

function buildReport(options, parts, rssSummary, cpu, quiet, redisVersion) {
  const report = {
    benchmark: 'all',
    date: new Date().toISOString(),
    machine: {
      cpus: os.cpus().length,
      cpuModel: (os.cpus()[0] || {}).model || 'unknown',
      memoryGiB: round(os.totalmem() / 2 ** 30, 1),
      node: process.version,
      redis: redisVersion,
    },
    options: { ...options, skip: [...options.skip] },
    quiet: { before: quiet, suite: { otherCores: cpu.otherCores, machineCores: cpu.machineCores } },
    figures: {},
    goals: [],
    anomalies: [],
    parts: {},
  };
  const goal = (name, measured, target, met, note) =>
    report.goals.push({ goal: name, measured, target, status: verdict(met), note });

  const stampede = parts.stampede?.report;
  if (stampede && stampede.modes) {
    const mode = (m) => {
      const r = stampede.modes[m];
      return {
        winners: r.winners,
        conflicts: r.conflicts,
        otherStatuses: r.otherStatuses,
        p50Ms: r.latencyMs.p50,
        p99Ms: r.latencyMs.p99,
        pgTransactions: r.postgres.transactions,
        pgTransactionsExclSessionStartups: r.postgres.transactionsExclSessionStartups,
        pgRowWrites: r.postgres.rowWrites,
        seatsUpdated: r.postgres.seatsUpdated,
        answeredWithoutPostgres: r.answeredWithoutPostgres,
      };
    };
    report.figures.stampede = {
      contenders: stampede.contenders,
      on: mode('redis'),
      off: mode('off'),
    };
    const share = stampede.modes.redis.answeredWithoutPostgres;
    goal(
      'stampede: contenders answered without PostgreSQL (lock on)',
      share,
      `>= ${GOALS.stampedeShare}`,
      share >= GOALS.stampedeShare,
    );
  }

  const http = parts.http;
  if (http && http.windows) {
    const w = http.windows;
    const pg = http.pgbench || {};
    const holdsRatio = ratio(w.holds.perSecond, pg.holdsPerSecond);
    const conflictRatio = ratio(w.conflicts.perSecond, w.live.perSecond);
    report.figures.holds = {
      perSecond: w.holds.perSecond,
      latencyMs: w.holds.latencyMs,
      pgbenchPerSecond: pg.holdsPerSecond ?? null,
      pgbenchClients: pg.clients ?? null,
      pgbenchRuns: pg.runs ?? null,
      ratio: holdsRatio,
    };
    report.figures.conflicts = {
      perSecond: w.conflicts.perSecond,
      latencyMs: w.conflicts.latencyMs,
      livePerSecond: w.live.perSecond,
      liveLatencyMs: w.live.latencyMs,
      ratio: conflictRatio,
    };
    report.figures.availability = {
      seats: http.settings.availabilitySeats,
      perSecond: w.seats.perSecond,
      latencyMs: w.seats.latencyMs,
      ratioToLive: ratio(w.seats.perSecond, w.live.perSecond),
    };
    goal(
      `distinct-seat holds/s @${options.connections} vs pgbench of the same SQL`,
      holdsRatio,
      `>= ${GOALS.holdsRatio}`,
      holdsRatio === null ? null : holdsRatio >= GOALS.holdsRatio,
    );
    goal(
      '409 path req/s vs /health/live req/s',
      conflictRatio,
      `>= ${GOALS.conflictRatio}`,
      conflictRatio === null ? null : conflictRatio >= GOALS.conflictRatio,
    );
    for (const [name, window] of Object.entries(w)) {
      if (window.errors > 0) {
        report.anomalies.push(
          `http ${name}: ${window.errors} unexpected answers ${JSON.stringify(window.statuses)} ` +
            `(first: ${JSON.stringify(window.errorSamples)})`,
        );
      }
      if (window.exhausted) report.anomalies.push(`http ${name}: ran out of seats`);
      if (window.cpu && window.cpu.otherCores > BUSY_MACHINE_CORES) {
        report.anomalies.push(
          `http ${name}: other processes used ${window.cpu.otherCores} cores (reads low)`,
        );
      }
    }
    if (pg.skipped) report.anomalies.push(`pgbench hold ceiling: ${pg.skipped}`);
    for (const run of pg.runs || [pg]) {
      for (const problem of run.problems || []) {
        if (problem) report.anomalies.push(`pgbench (${run.clients} clients): ${problem}`);
      }
      if (run.otherCores > BUSY_MACHINE_CORES) {
        report.anomalies.push(
          `pgbench (${run.clients} clients): other processes used ${run.otherCores} cores`,
        );
      }
    }
    if (http.apiLog && http.apiLog.error + http.apiLog.fatal > 0) {
      report.anomalies.push(`http: ${http.apiLog.error + http.apiLog.fatal} API error log lines`);
    }
  }

  const flow = parts.flow?.report;
  if (flow && flow.benchmark === 'flow') {
    report.figures.flow = {
      bookingsPerSecond: flow.bookingsPerSecond,
      latencyMs: flow.measured?.latencyMs ?? null,
      pgTransactionsPerBooking: flow.postgres?.transactionsPerBooking ?? null,
      pgTransactionsPerBookingExclSessionStartups:
        flow.postgres?.transactionsPerBookingExclSessionStartups ?? null,
      pgbenchCyclesPerSecond: flow.ceiling?.cyclesPerSecond ?? null,
      ratio: flow.ratioToCeiling ?? null,
      ledgerClean: flow.ledger?.clean ?? null,
    };
  }
  const notify = parts.notify?.report;
  if (notify && notify.benchmark === 'notify') {
    report.figures.notify = {
      messagesPerSecond: notify.messagesPerSecond,
      latencyMs: notify.latencyMs,
      httpCeilingPerSecond: notify.ceiling?.http?.requestsPerSecond ?? null,
      ratioToHttp: notify.ceiling?.ratioToHttp ?? null,
      ratioToPgbenchFull: notify.ceiling?.ratioToPgbenchFull ?? null,
      pgbenchFullPerSecond: notify.ceiling?.pgbench?.full?.messagesPerSecond ?? null,
      duplicates: notify.duplicates,
    };
  }
  const lock = parts.lock?.report;
  if (lock && lock.benchmark === 'lock') {
    const at = (id) => lock.uncontended?.[id]?.concurrent?.pairsPerSec ?? null;
    report.figures.lock = {
      inflight: lock.settings?.inflight,
      oursPairsPerSecond: at('ours'),
      rawPairsPerSecond: at('raw'),
      redlockPairsPerSecond: at('redlock'),
      semaphorePairsPerSecond: at('redis-semaphore'),
      goals: lock.goals,
    };
  }

  report.figures.rss = rssSummary;
  if (http && http.windows) {
    report.figures.httpMemoryStart = {
      ready: http.apiMemoryAtReady?.peakMB ?? null,
      setup: http.apiMemoryAfterSetup?.peakMB ?? null,
    };
    report.figures.httpMemory = Object.fromEntries(
      Object.entries(http.windows).map(([name, w]) => [name, w.apiMemoryAfter?.peakMB ?? null]),
    );
  }
  goal(
    'API peak RSS (VmHWM) during the suite',
    rssSummary.apiPeakMB,
    `<= ${GOALS.peakRssMB} MB`,
    rssSummary.apiPeakMB === null ? null : rssSummary.apiPeakMB <= GOALS.peakRssMB,
  );

  for (const name of CHILD_BENCHMARKS) {
    const part = parts[name];
    if (!part) continue;
    report.parts[name] = { code: part.code, seconds: part.seconds, report: part.report };
    if (part.code !== 0) report.anomalies.push(`${name} exited with ${part.code ?? part.signal}`);
    for (const note of flattenAnomalies(part.report)) report.anomalies.push(`${name}: ${note}`);
  }
  if (http) {
    const { state, ...rest } = http;
    void state;
    report.parts.http = rest;
  }
  if (parts.profiles) report.profiles = parts.profiles;
  if (quiet.otherCores > BUSY_MACHINE_CORES || cpu.otherCores > BUSY_MACHINE_CORES) {
    report.anomalies.push(
      `the machine was not quiet: other processes used ${quiet.otherCores} cores before the ` +
        `suite and ${cpu.otherCores} during it (figures read low)`,
    );
  }
  report.ok =
    ALL_PARTS.filter((name) => !options.skip.has(name)).every((name) =>
      name === 'http' ? Boolean(http && http.windows) : parts[name]?.code === 0,
    ) && !report.anomalies.some((note) => /unexpected answers|winners instead/.test(note));
  return report;
}

function flattenAnomalies(report) {
  if (!report || !report.anomalies) return report && report.error ? [report.error] : [];
  if (Array.isArray(report.anomalies)) return report.anomalies.map(String);
  return Object.entries(report.anomalies).flatMap(([key, list]) =>
    (Array.isArray(list) ? list : [list]).map((note) => `[${key}] ${note}`),
  );
}

function printReport(report) {
  const f = report.figures;
  const num = (value, digits = 0) =>
    value === null || value === undefined
      ? '-'
      : Number(value).toLocaleString('en-US', {
          minimumFractionDigits: digits,
          maximumFractionDigits: digits,
        });
  const msPair = (latency) =>
    latency ? `p50 ${num(latency.p50, 1)} / p99 ${num(latency.p99, 1)} ms` : '-';
  const pct = (value) =>
    value === null || value === undefined ? '-' : `${(value * 100).toFixed(1)} %`;
  const x = (value) => (value === null || value === undefined ? '-' : `${value.toFixed(2)}x`);
  const goalOf = (text) => report.goals.find((g) => g.goal.startsWith(text))?.status ?? '';
  const rows = [['figure', 'measured', 'ceiling (same run)', 'ratio', 'goal']];
  if (f.stampede) {
    const { on, off, contenders } = f.stampede;
    rows.push(null);
    rows.push([
      `stampede: ${num(contenders)} holds on one seat`,
      'lock on',
      'LOCK_MODE=off',
      '',
      '',
    ]);
    rows.push([
      '  winners / 409s',
      `${on.winners} / ${on.conflicts}`,
      `${off.winners} / ${off.conflicts}`,
      '',
      '',
    ]);
    rows.push([
      '  PG transactions (excl. session start-ups)',
      `${on.pgTransactions} (${on.pgTransactionsExclSessionStartups})`,
      `${off.pgTransactions} (${off.pgTransactionsExclSessionStartups})`,
      '',
      '',
    ]);
    rows.push([
      '  PG row writes / seat-row updates',
      `${on.pgRowWrites} / ${on.seatsUpdated}`,
      `${off.pgRowWrites} / ${off.seatsUpdated}`,
      '',
      '',
    ]);
    rows.push([
      '  latency p50 / p99',
      `${num(on.p50Ms, 1)} / ${num(on.p99Ms, 1)} ms`,
      `${num(off.p50Ms, 1)} / ${num(off.p99Ms, 1)} ms`,
      '',
      '',
    ]);
    rows.push([
      '  answered without PostgreSQL',
      pct(on.answeredWithoutPostgres),
      pct(off.answeredWithoutPostgres),
      '',
      `>= 99.9 % ${goalOf('stampede')}`,
    ]);
  }
  if (f.holds) {
    rows.push(null);
    rows.push([
      `distinct-seat holds/s (${report.options.connections} conn.) vs pgbench hold SQL (best)`,
      `${num(f.holds.perSecond)}/s`,
      `${num(f.holds.pgbenchPerSecond)}/s (${f.holds.pgbenchClients ?? '-'} clients)`,
      x(f.holds.ratio),
      `>= 0.6x ${goalOf('distinct-seat')}`,
    ]);
    for (const run of f.holds.pgbenchRuns || []) {
      rows.push([
        `  pgbench hold SQL at ${run.clients} clients`,
        '',
        `${num(run.holdsPerSecond)}/s`,
        x(ratio(f.holds.perSecond, run.holdsPerSecond)),
        '',
      ]);
    }
    rows.push(['  hold latency', msPair(f.holds.latencyMs), '', '', '']);
    rows.push([
      '409 path req/s (held seat, 256 customers) vs /health/live',
      `${num(f.conflicts.perSecond)}/s`,
      `${num(f.conflicts.livePerSecond)}/s`,
      x(f.conflicts.ratio),
      `>= 0.5x ${goalOf('409')}`,
    ]);
    rows.push([
      '  409 latency / /health/live latency',
      msPair(f.conflicts.latencyMs),
      msPair(f.conflicts.liveLatencyMs),
      '',
      '',
    ]);
    rows.push([
      `availability GET /events/{id}/seats (${num(f.availability.seats)} seats)`,
      `${num(f.availability.perSecond)}/s`,
      `${num(f.conflicts.livePerSecond)}/s (/health/live)`,
      x(f.availability.ratioToLive),
      '',
    ]);
    rows.push(['  availability latency', msPair(f.availability.latencyMs), '', '', '']);
  }
  if (f.flow) {
    rows.push(null);
    rows.push([
      'hold -> pay -> confirm bookings/s vs pgbench of its SQL',
      `${num(f.flow.bookingsPerSecond, 1)}/s`,
      `${num(f.flow.pgbenchCyclesPerSecond, 1)}/s`,
      x(f.flow.ratio),
      '',
    ]);
    rows.push([
      '  PG transactions per booking (excl. session start-ups)',
      `${num(f.flow.pgTransactionsPerBooking, 2)} (${num(f.flow.pgTransactionsPerBookingExclSessionStartups, 2)})`,
      '',
      '',
      `ledger ${f.flow.ledgerClean ? 'clean' : 'NOT clean'}`,
    ]);
  }
  if (f.notify) {
    rows.push([
      'outbox -> webhook messages/s vs HTTP-only ceiling',
      `${num(f.notify.messagesPerSecond)}/s`,
      `${num(f.notify.httpCeilingPerSecond)}/s`,
      x(f.notify.ratioToHttp),
      '',
    ]);
  }
  if (f.lock) {
    rows.push([
      `lock acquire+release pairs/s @${f.lock.inflight} vs raw SET NX + delete`,
      `${num(f.lock.oursPairsPerSecond)}/s`,
      `${num(f.lock.rawPairsPerSecond)}/s`,
      x(ratio(f.lock.oursPairsPerSecond, f.lock.rawPairsPerSecond)),
      `>= 0.9x ${(f.lock.goals || [])[0]?.status ?? ''}`,
    ]);
  }
  rows.push(null);
  rows.push([
    `API peak RSS (VmHWM, ${f.rss.apiProcesses} API processes)`,
    `${num(f.rss.apiPeakMB, 1)} MB`,
    '',
    '',
    `<= 250 MB ${goalOf('API peak RSS')}`,
  ]);
  for (const [part, peak] of Object.entries(f.rss.byPart)) {
    rows.push([
      `  ${part} (${peak.processes} API process(es))`,
      `${num(peak.peakMB, 1)} MB`,
      '',
      '',
      '',
    ]);
  }
  if (f.httpMemory) {
    rows.push([
      '  http: API VmHWM at ready / after set-up',
      `${num(f.httpMemoryStart.ready)} / ${num(f.httpMemoryStart.setup)} MB`,
      '',
      '',
      '',
    ]);
    rows.push([
      '  http: API VmHWM after each window',
      Object.entries(f.httpMemory)
        .map(([name, mb]) => `${name} ${num(mb)}`)
        .join(', '),
      '',
      '',
      '',
    ]);
  }
  const cells = rows.map((row) => (row ? row.map(String) : null));
  const widths = [0, 1, 2, 3, 4].map((i) =>
    Math.max(...cells.filter(Boolean).map((row) => row[i].length)),
  );
  const rule = '-'.repeat(widths.reduce((sum, w) => sum + w, 0) + 8);
  const out = [
    '',
    `Seatlock benchmark suite, ${report.date}: ${report.machine.cpus} x ${report.machine.cpuModel}, ` +
      `node ${report.machine.node}, redis ${report.machine.redis}`,
    `other processes: ${report.quiet.before.otherCores} cores in the ${report.quiet.before.seconds} s ` +
      `before the suite, ${report.quiet.suite.otherCores} cores during it`,
    rule,
  ];
  for (const row of cells) {
    out.push(
      row
        ? [
            row[0].padEnd(widths[0]),
            row[1].padStart(widths[1]),
            row[2].padStart(widths[2]),
            row[3].padStart(widths[3]),
            row[4].padEnd(widths[4]),
          ]
            .join('  ')
            .trimEnd()
        : rule,
    );
  }
  out.push(rule);
  for (const g of report.goals) {
    out.push(`${g.status.padEnd(6)}  ${g.goal}: ${g.measured ?? '-'} (goal ${g.target})`);
  }
  if (report.profiles) {
    out.push('', `CPU profiles of missed goals (${report.profiles.dir}):`);
    for (const [name, p] of Object.entries(report.profiles.profiles)) {
      if (p.error) {
        out.push(`  ${name}: ${p.error}`);
        continue;
      }
      out.push(
        `  ${name}: ${p.perSecondProfiled}/s while profiled; ${p.busyMs} ms busy of ${p.windowMs} ms ` +
          `(${p.idlePct} % idle), ${p.samplesInWindow} samples in the window; top self time:`,
      );
      for (const fn of p.topFunctions.slice(0, 10)) {
        out.push(`    ${String(fn.pctOfBusy).padStart(5)} %  ${fn.name}`);
      }
      out.push('    by area:');
      for (const area of p.topAreas.slice(0, 8)) {
        out.push(`    ${String(area.pctOfBusy).padStart(5)} %  ${area.name}`);
      }
    }
  }
  for (const note of report.anomalies) out.push(`! ${note}`);
  process.stdout.write(`${out.join('\n')}\n`);
}

// ---------------------------------------------------------------------------------------------

async function main() {
  const options = parseArgs(process.argv.slice(2));
  if (options.quick) {
    options.duration = Math.min(options.duration, 3);
    options.warmup = Math.min(options.warmup, 1);
    options.flowDuration = Math.min(options.flowDuration, 5);
  }
  if (!existsSync(API_MAIN)) throw new BenchError(`${API_MAIN} is missing: run \`npm run build\``);
  const urls = localDatabaseUrls({ http: HTTP_DATABASE });

  log('quiet check: 5 s of the machine with nothing of ours running');
  let quiet = await quietCheck(5);
  log(`other processes: ${quiet.otherCores} cores`);
  const waitUntil = Date.now() + options.waitQuiet * 60_000;
  while (quiet.otherCores > BUSY_MACHINE_CORES && Date.now() < waitUntil) {
    log(`busy (more than ${BUSY_MACHINE_CORES} cores): checking again in a minute`);
    await sleep(60_000);
    quiet = await quietCheck(5);
    log(`other processes: ${quiet.otherCores} cores`);
  }

  const redis = await startRedis();
  log(`own redis-server ${redis.proc.version} on ${redis.url}`);
  const admin = new PgClient({ connectionString: urls.admin, connectionTimeoutMillis: 5_000 });
  await admin.connect();
  const rss = new RssWatcher();
  rss.start();
  const suiteCpu = suiteSampler(admin);
  await suiteCpu.start();
  const parts = {};
  const childEnv = { DATABASE_URL: urls.base, REDIS_URL: redis.url };
  try {
    const enabled = (name) => !options.skip.has(name);
    // Another build of the same checkout empties dist/ for a while: wait for it between the parts.
    const builtEnabled = async (name) => {
      if (!enabled(name)) return false;
      const deadline = Date.now() + 180_000;
      while (!existsSync(API_MAIN) && Date.now() < deadline) await sleep(1_000);
      return true;
    };
    if (await builtEnabled('stampede')) {
      parts.stampede = await runBenchmark('stampede', ['--contenders', '1000'], childEnv, rss);
    }
    if (await builtEnabled('http'))
      parts.http = await httpPart(options, urls, redis.url, admin, rss);
    if (await builtEnabled('flow')) {
      parts.flow = await runBenchmark(
        'flow',
        ['--customers', String(options.connections), '--duration', String(options.flowDuration)],
        childEnv,
        rss,
      );
    }
    if (await builtEnabled('notify')) {
      const args = options.quick ? ['--messages', '2000'] : [];
      parts.notify = await runBenchmark('notify', args, childEnv, rss);
    }
    if (await builtEnabled('lock')) {
      const args = options.quick
        ? ['--duration', '1', '--warmup', '0.2', '--rounds', '1', '--contention-runs', '5']
        : [];
      parts.lock = await runBenchmark('lock', args, childEnv, rss);
    }
    rss.sample();
    const cpu = await suiteCpu.stop();
    const rssSummary = rss.summary();
    let report = buildReport(options, parts, rssSummary, cpu, quiet, redis.proc.version);

    const missed = report.goals
      .filter((g) => g.status === 'MISSED')
      .map((g) =>
        g.goal.startsWith('distinct-seat')
          ? 'holds'
          : g.goal.startsWith('409')
            ? 'conflicts'
            : null,
      )
      .filter(Boolean);
    const profile = options.profile
      ? [...new Set([...missed, ...options.profileAlso])]
      : options.profileAlso;
    if (profile.length > 0 && parts.http) {
      log(`profiling the hot paths of: ${profile.join(', ')}`);
      parts.profiles = await profilePart(profile, parts.http, options, urls, redis.url, admin, rss);
      report = buildReport(options, parts, rssSummary, cpu, quiet, redis.proc.version);
    }
    printReport(report);
    if (options.json) process.stdout.write(`${JSON.stringify(report)}\n`);
    return report.ok ? 0 : 1;
  } finally {
    if (!suiteCpu.stopped) await suiteCpu.stop().catch(() => undefined);
    rss.stop();
    await withClient(urls.admin, (client) =>
      client.query(`DROP DATABASE IF EXISTS ${HTTP_DATABASE} WITH (FORCE)`),
    ).catch((error) => log(`could not drop ${HTTP_DATABASE}: ${error.message}`));
    await admin.end().catch(() => undefined);
    await children.stopAll();
  }
}

runBenchmarkMain({ benchmark: 'all', main, children, log, totalMs: TIMEOUTS.total });
