'use strict';

/*
 * Payment flow benchmark: complete bookings per second, hold -> pay -> confirmed.
 *
 *   npm run bench:flow -- [--customers N] [--duration S] [--warmup S] [--json] [--no-pgbench]
 *
 * It creates two fresh databases, one for the API (seatlock_bench_flow) and one for the gateway
 * simulator (seatlock_bench_gateway), so that the simulator's own polling (two loops, every 100 ms)
 * never counts as the API's PostgreSQL transactions. It starts the BUILT simulator and the BUILT API
 * as child processes (the API with GATEWAY_URL set, so it spawns no simulator of its own; the
 * simulator posts its webhooks to the API, as `npm start` wires them), creates events big enough
 * for the run, registers N customers (--customers, default 64), and gives each its own HTTP
 * connection. Every customer then loops, for --warmup seconds (3) and again for --duration seconds
 * (20):
 *
 *   POST /bookings {eventId, seatIds:[<a seat nobody else ever asks for>]}      -> 201 held
 *   POST /bookings/{id}/payments {paymentMethod:'pm_card_visa'} + a fresh Idempotency-Key
 *                                                          -> 201 payment captured, booking confirmed
 *
 * A cycle counts only if both answers are 201 and say exactly that (the right booking, the right
 * seat, captured, confirmed); a 201 that says anything else is an invariant violation (exit 1). Any
 * other answer is an error, listed by step and status. Bookings/s = cycles completed inside the
 * measured window / its length; latencies are those of the cycles completed inside it.
 *
 * PostgreSQL transactions per booking: the xact_commit + xact_rollback delta of the API's database
 * over the measured phase, divided by the bookings that phase made. PostgreSQL 15 publishes a
 * backend's counters at most once a second and, once the backend is idle, up to 10 s later (at once
 * when it exits); so the load pauses between the warm-up and the measured phase, and both snapshots
 * wait until the simulator has delivered every webhook, the app's outbox (if the build dispatches
 * it) stopped shrinking, the app's pool has closed its idle sessions and the counters stood still
 * for 2 s (about 12 s each); the second one is checked again after the API exited. The pool
 * re-opens its sessions when the measured phase starts and each new session commits one start-up
 * transaction: reported apart. A session that only LISTENs (an outbox dispatcher's wake-up channel)
 * reads every NOTIFY in a transaction of its own and publishes those counts only when it exits:
 * they are reported apart too, as "published only at the API exit". The background jobs (hold
 * sweeper, payment reconciler) are slowed to once an hour and the outbox's safety-net poll to once
 * every 5 s; rate limits are off. The gateway's side is counted from its own database: intents
 * created, POSTs made (each carries an Idempotency-Key the simulator stores) and webhooks sent, per
 * booking.
 *
 * Where the time goes: /proc/<pid>/stat of the API, the simulator, this process (the load
 * generator), redis-server and every PostgreSQL process (split by the database each backend serves),
 * sampled each second during the measured window, next to the machine's busy time (/proc/stat).
 *
 * Then `check:ledger` (the compiled checker in dist/, every booking, every intent) must be clean,
 * and the ledger's totals must match the cycles counted here, or the exit code is 1.
 *
 * Ceiling: with the API and the simulator stopped, pgbench (Debian: postgresql-client-15's
 * /usr/lib/postgresql/15/bin/pgbench; skipped with a note when there is none) replays the SQL one
 * booking costs the API (its 10 transactions, statement for statement, traced from the running app:
 * the hold, the idempotency claim, the payment insert, authorize, the fenced confirm, capture, the
 * idempotency answer, the webhook) on the same database, one seat per cycle, at the same
 * concurrency, for the same duration (extended query protocol, like node-postgres). That is what
 * PostgreSQL alone can do on this machine; bookings/s / that = how close the app comes. The issue's
 * reference, a FastAPI movie-booking app doing hold -> confirm without payment at about 615
 * cycles/s on this kind of machine, is printed beside our figure.
 */

const { randomBytes, randomUUID } = require('node:crypto');
const { existsSync, mkdtempSync, rmSync, writeFileSync } = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { setTimeout: sleep } = require('node:timers/promises');
const { Client: PgClient } = require('pg');
const { Agent, Client: HttpClient } = require('undici');
const {
  BenchError,
  CpuSampler,
  benchDatabaseName,
  freePort,
  mapLimit,
  percentile,
  round,
  withTimeout,
  apiNodeOptions,
  subtract,
  localDatabaseUrls,
  localRedisUrl,
  requireRedis,
} = require('./bench-support');
const {
  ChildProcesses,
  runBenchmarkMain,
  hasExited,
  logSince,
  logSnapshot,
  waitHealthy,
} = require('./bench-children');
const { expectStatus, httpCaller, readAnswer } = require('./bench-http');
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
const GATEWAY_MAIN = path.join(
  ROOT,
  'dist',
  'apps',
  'gateway-sim',
  'apps',
  'gateway-sim',
  'src',
  'main.js',
);
const LEDGER_CHECK = path.join(
  ROOT,
  'dist',
  'apps',
  'api',
  'apps',
  'api',
  'src',
  'ledger',
  'ledger-check.js',
);
const API_DATABASE = benchDatabaseName('seatlock_bench_flow');
const GATEWAY_DATABASE = benchDatabaseName('seatlock_bench_gateway');
/** The issue's yardstick: a FastAPI movie-booking app, hold -> confirm, no payment. */
const REFERENCE = {
  name: 'FastAPI movie-booking reference (hold -> confirm, no payment)',
  cyclesPerSecond: 615,
};

const SEATS_PER_EVENT = 10_000; // the API's cap per event
/** Seats created up front: enough for this many cycles/s over warm-up + window (topped up later). */
const SEAT_BUDGET_PER_SECOND = 2_000;
/** pgbench gets this many seats per second of run: far above what 2 cores can do. */
const PGBENCH_SEAT_BUDGET_PER_SECOND = 6_000;
const PAYMENT_METHOD = 'pm_card_visa';
const PRICE_CENTS = 4_200;
const SETUP_CONCURRENCY = 16;
const STATS_POLL_MS = 250;
/** PGSTAT_IDLE_INTERVAL (10 s) plus a margin: pending counters of an idle backend are out by then. */
const STATS_QUIET_MS = 12_000;
const STATS_STABLE_MS = 2_000;
const STATS_MAX_WAIT_MS = 25_000;
/** The outbox backlog unchanged this long: nothing (more) is dispatching it. */
const OUTBOX_STALL_MS = 6_000;
/** Other processes using more than this many cores during the window: flagged. */
const BUSY_MACHINE_CORES = 0.25;

const TIMEOUTS = {
  total: 20 * 60_000,
  ready: 60_000,
  request: 30_000,
  setupRequest: 60_000,
  drain: 60_000,
  ledger: 180_000,
  stop: 10_000,
};

const USAGE = `Usage: npm run bench:flow -- [--customers N] [--duration S] [--warmup S] [--json] [--no-pgbench]

  --customers N   virtual customers, each with its own connection, looping hold -> pay (default 64)
  --duration S    measured window in seconds (default 20)
  --warmup S      warm-up in seconds before it, not counted (default 3)
  --json          also print one JSON object as the last line of stdout
  --no-pgbench    skip the pgbench ceiling
  --pgbench PATH  the pgbench binary (default: ${PGBENCH_CANDIDATES.join(', ')}, then PATH)

Environment: DATABASE_URL (only its server is used; the bench databases are ${API_DATABASE} and
${GATEWAY_DATABASE}), REDIS_URL (default redis://127.0.0.1:6379). Both must be on this machine.`;

// ---------------------------------------------------------------------------------------------
// Small helpers

function log(message) {
  process.stderr.write(`[flow] ${message}\n`);
}

function parseArgs(argv) {
  const options = { customers: 64, duration: 20, warmup: 3, json: false, pgbench: true };
  const number = (name, raw, min, max, integer) => {
    const n = Number(raw);
    if (!/^\d+(\.\d+)?$/.test(raw ?? '') || n < min || n > max || (integer && n % 1 !== 0)) {
      throw new BenchError(
        `${name} needs ${integer ? 'an integer' : 'a number'} from ${min} to ${max}, got ${raw}`,
      );
    }
    return n;
  };
  for (let i = 0; i < argv.length; i += 1) {
    const eq = argv[i].startsWith('--') ? argv[i].indexOf('=') : -1;
    const name = eq === -1 ? argv[i] : argv[i].slice(0, eq);
    const take = () => (eq === -1 ? argv[(i += 1)] : argv[i].slice(eq + 1));
    if (name === '--json') options.json = true;
    else if (name === '--no-pgbench') options.pgbench = false;
    else if (name === '--help' || name === '-h') {
      process.stdout.write(`${USAGE}\n`);
      process.exit(0);
    } else if (name === '--customers') options.customers = number(name, take(), 1, 1000, true);
    else if (name === '--duration') options.duration = number(name, take(), 1, 600, false);
    else if (name === '--warmup') options.warmup = number(name, take(), 0, 120, false);
    else if (name === '--pgbench') {
      options.pgbenchPath = take();
      if (!options.pgbenchPath) throw new BenchError('--pgbench needs a path');
    } else {
      throw new BenchError(`unknown argument ${argv[i]}\n${USAGE}`);
    }
  }
  return options;
}

function elapsedMs(since) {
  return Number(process.hrtime.bigint() - since) / 1e6;
}

function latencySummary(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mean = sorted.length ? sorted.reduce((sum, v) => sum + v, 0) / sorted.length : null;
  return {
    n: sorted.length,
    p50: round(percentile(sorted, 50)),
    p99: round(percentile(sorted, 99)),
    max: round(sorted.length ? sorted[sorted.length - 1] : null),
    mean: round(mean),
  };
}

const databaseUrls = () => localDatabaseUrls({ api: API_DATABASE, gateway: GATEWAY_DATABASE });

// ---------------------------------------------------------------------------------------------
// HTTP

const call = httpCaller({ timeoutMs: TIMEOUTS.setupRequest });

/** `seatlock_*` samples of the Prometheus text, keyed `name{labels}`. */
function parseMetrics(text) {
  const samples = {};
  for (const line of text.split('\n')) {
    const match = /^(seatlock_[a-z_]+(?:\{[^}]*\})?) ([0-9.eE+-]+|NaN)$/.exec(line.trim());
    if (match) samples[match[1]] = Number(match[2]);
  }
  return samples;
}

function metricsDelta(before, after) {
  const delta = {};
  for (const [name, value] of Object.entries(after)) {
    if (name.includes('_bucket') || name.includes('_sum') || name.includes('_count')) continue;
    const d = value - (before[name] || 0);
    if (d !== 0) delta[name] = round(d, 3);
  }
  return delta;
}

// ---------------------------------------------------------------------------------------------
// The simulator and the API, as child processes

const children = new ChildProcesses({ cwd: ROOT, stopTimeoutMs: TIMEOUTS.stop, log });

/** Waits for `route` of `url` to answer 200. */
function untilHealthy(proc, agent, url, route) {
  return waitHealthy(
    proc,
    () => call(agent, url, 'GET', route, { timeoutMs: 2_000 }),
    TIMEOUTS.ready,
  );
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL

/**
 * A pg client whose connection may be cut under it (the databases are dropped WITH (FORCE) on
 * SIGINT): the error then surfaces on the next query instead of crashing the process.
 */
function pgClient(connectionString) {
  const client = new PgClient({ connectionString, connectionTimeoutMillis: 5_000 });
  client.on('error', (error) => log(`PostgreSQL connection lost: ${error.message}`));
  return client;
}

async function recreateDatabases(adminUrl) {
  await withClient(adminUrl, async (client) => {
    for (const name of [API_DATABASE, GATEWAY_DATABASE]) {
      await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await client.query(`CREATE DATABASE ${name}`);
    }
  });
}

async function dropDatabases(adminUrl) {
  await withClient(adminUrl, async (client) => {
    for (const name of [API_DATABASE, GATEWAY_DATABASE]) {
      await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    }
  });
}

const DATABASE_COUNTERS = [
  'sessions',
  'xact_commit',
  'xact_rollback',
  'tup_inserted',
  'tup_updated',
  'tup_deleted',
  'tup_fetched',
];

/**
 * pg_stat_database of one database and its open client sessions, read from `postgres`. A session
 * that only LISTENs (the outbox dispatcher's wake-up channel) stays open for the app's lifetime and
 * runs no transactions: it does not count as open.
 */
async function databaseCounters(admin, database) {
  const { rows } = await admin.query(
    `SELECT ${DATABASE_COUNTERS.join(', ')},
            (SELECT count(*) FROM pg_stat_activity
             WHERE datname = $1 AND backend_type = 'client backend'
               AND NOT (state = 'idle' AND query ILIKE 'LISTEN %')) AS open_sessions,
            (SELECT count(*) FROM pg_stat_activity
             WHERE datname = $1 AND state = 'idle' AND query ILIKE 'LISTEN %') AS listen_sessions
     FROM pg_stat_database WHERE datname = $1`,
    [database],
  );
  if (rows.length === 0) throw new BenchError(`no pg_stat_database row for ${database}`);
  return {
    counters: Object.fromEntries(DATABASE_COUNTERS.map((name) => [name, Number(rows[0][name])])),
    openSessions: Number(rows[0].open_sessions),
    listenSessions: Number(rows[0].listen_sessions),
    at: Date.now(),
  };
}

function sameCounters(a, b) {
  return DATABASE_COUNTERS.every((name) => a[name] === b[name]);
}

/**
 * Waits until the API database's counters are complete: no session open on it (the pool closes
 * sessions idle for 10 s) or STATS_QUIET_MS since the app's last request, and the counters unchanged
 * for STATS_STABLE_MS. Gives up after STATS_MAX_WAIT_MS (reported as not settled).
 */
async function settle(admin, quietSince) {
  const started = Date.now();
  let current = await databaseCounters(admin, API_DATABASE);
  let changedAt = started;
  for (;;) {
    const now = Date.now();
    const stable = now - changedAt >= STATS_STABLE_MS;
    const drained = current.openSessions === 0 || now - quietSince >= STATS_QUIET_MS;
    if ((stable && drained) || now - started >= STATS_MAX_WAIT_MS) {
      return { ...current, settled: stable && drained, waitedMs: now - started };
    }
    await sleep(STATS_POLL_MS);
    const next = await databaseCounters(admin, API_DATABASE);
    if (!sameCounters(next.counters, current.counters)) changedAt = Date.now();
    current = next;
  }
}

/** What the simulator did so far, from its own tables. */
async function gatewayCounts(gatewayDb) {
  const { rows } = await gatewayDb.query(
    `SELECT (SELECT count(*) FROM gateway_sim.payment_intents)::int AS intents,
            (SELECT count(*) FROM gateway_sim.payment_intents WHERE status = 'succeeded')::int
              AS captured_intents,
            (SELECT count(*) FROM gateway_sim.idempotency_keys)::int AS idempotent_posts,
            (SELECT count(*) FROM gateway_sim.refunds)::int AS refunds,
            (SELECT count(*) FROM gateway_sim.webhook_deliveries)::int AS webhooks,
            (SELECT count(*) FROM gateway_sim.webhook_deliveries
             WHERE delivered_at IS NULL AND failed_at IS NULL)::int AS webhook_backlog,
            (SELECT count(*) FROM gateway_sim.webhook_deliveries
             WHERE failed_at IS NOT NULL)::int AS webhooks_failed`,
  );
  return rows[0];
}

/** Until the simulator has delivered every webhook it owes (they reach the API's database). */
async function drainWebhooks(gatewayDb) {
  const deadline = Date.now() + TIMEOUTS.drain;
  for (;;) {
    const counts = await gatewayCounts(gatewayDb);
    if (counts.webhook_backlog === 0) return counts;
    if (Date.now() > deadline) {
      throw new BenchError(
        `the simulator still owes ${counts.webhook_backlog} webhooks after ${TIMEOUTS.drain} ms`,
      );
    }
    await sleep(200);
  }
}

/**
 * Until the app's outbox stops shrinking: a build with an outbox dispatcher sends the messages the
 * bookings wrote (booking.held, booking.confirmed) after the answers, and that work belongs to the
 * bookings. Without a dispatcher the count just stands still. Reads through a session of its own
 * on the API database, whose transactions (one per read plus the session's start-up) the caller
 * subtracts when they fall inside the measured window.
 */
async function drainOutbox(apiUrl) {
  const started = Date.now();
  let reads = 0;
  let first = null;
  let last = null;
  let changedAt = started;
  try {
    return await withClient(apiUrl, async (client) => {
      for (;;) {
        reads += 1;
        const { rows } = await client.query(
          `SELECT count(*)::int AS n FROM outbox_messages WHERE status = 'pending'`,
        );
        const pending = rows[0].n;
        first ??= pending;
        if (pending !== last) changedAt = Date.now();
        last = pending;
        const now = Date.now();
        if (
          pending === 0 ||
          now - changedAt >= OUTBOX_STALL_MS ||
          now - started >= TIMEOUTS.drain
        ) {
          return { pendingAtStart: first, pending, waitedMs: now - started, reads };
        }
        await sleep(500);
      }
    });
  } catch (error) {
    return { error: error.message, reads };
  }
}

/** The rows, read after the run: every cycle counted here must be one confirmed, paid booking. */
async function databaseTruth(apiUrl) {
  return withClient(apiUrl, async (client) => {
    const bookings = await client.query(
      `SELECT status, count(*)::int AS n FROM bookings GROUP BY status ORDER BY status`,
    );
    const seats = await client.query(
      `SELECT count(*) FILTER (WHERE s.status = 'booked')::int AS booked,
              count(*) FILTER (WHERE s.status = 'held')::int AS held,
              count(*) FILTER (WHERE s.status = 'booked' AND b.status IS DISTINCT FROM 'confirmed')::int
                AS booked_without_confirmed_booking
       FROM seats s LEFT JOIN bookings b ON b.id = s.booking_id`,
    );
    const payments = await client.query(
      `SELECT status, count(*)::int AS n FROM payments GROUP BY status ORDER BY status`,
    );
    const toMap = (rows) => Object.fromEntries(rows.map((row) => [row.status, row.n]));
    return {
      bookings: toMap(bookings.rows),
      seats: seats.rows[0],
      payments: toMap(payments.rows),
    };
  });
}

// ---------------------------------------------------------------------------------------------
// Set-up: events, seats, customers

/** Spreadsheet-style row letters are the API's business; the labels come from its answer. */
async function createEvents(agent, api, count, adminToken, firstIndex) {
  const events = [];
  for (let i = 0; i < count; i += 1) {
    const event = expectStatus(
      await call(agent, api.url, 'POST', '/admin/events', {
        token: adminToken,
        body: {
          name: `Flow bench ${firstIndex + i + 1} ${new Date().toISOString()}`,
          startsAt: '2027-06-01T19:30:00Z',
          venue: 'Bench Arena',
          currency: 'EUR',
          sections: [{ name: 'Floor', rows: 100, seatsPerRow: 100, priceCents: PRICE_CENTS }],
        },
      }),
      201,
      'POST /admin/events',
    );
    if (!Array.isArray(event.seats) || event.seats.length !== SEATS_PER_EVENT) {
      throw new BenchError(`POST /admin/events answered ${event.seats?.length} seats`);
    }
    events.push({ id: event.id, labels: event.seats.map((seat) => seat.label) });
  }
  return events;
}

/** Seats taken round-robin across the events, so the warm-up already loads every seat map. */
function interleave(events) {
  const seats = [];
  const longest = Math.max(0, ...events.map((event) => event.labels.length));
  for (let i = 0; i < longest; i += 1) {
    for (const event of events) {
      if (i < event.labels.length) seats.push({ eventId: event.id, label: event.labels[i] });
    }
  }
  return seats;
}

// ---------------------------------------------------------------------------------------------
// The load: one virtual user per customer, one connection each

function newPhase(name, seconds) {
  return {
    name,
    seconds,
    stop: false,
    deadline: null,
    startedAt: null,
    cycles: [],
    errors: {},
    errorSamples: {},
    violations: [],
    outOfSeats: 0,
  };
}

function noteError(phase, key, text) {
  phase.errors[key] = (phase.errors[key] || 0) + 1;
  phase.errorSamples[key] ??= String(text).slice(0, 300);
}

async function send(client, method, route, { token, body, idempotencyKey }) {
  const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
  if (idempotencyKey) headers['idempotency-key'] = idempotencyKey;
  const started = process.hrtime.bigint();
  try {
    const response = await client.request({
      path: route,
      method,
      headers,
      body: JSON.stringify(body),
    });
    const answer = await readAnswer(response);
    return { ...answer, ms: elapsedMs(started) };
  } catch (error) {
    return {
      status: `error:${error.code || error.name}`,
      body: null,
      text: error.message,
      ms: elapsedMs(started),
    };
  }
}

/** The hold answer must be this request's booking, held, for exactly the seat asked for. */
function holdViolation(body, seat) {
  if (!body || typeof body !== 'object') return 'hold 201 without a JSON body';
  if (body.status !== 'held') return `hold 201 with status ${body.status}`;
  if (body.eventId !== seat.eventId) return `hold 201 for event ${body.eventId}`;
  if (!Array.isArray(body.seats) || body.seats.length !== 1 || body.seats[0] !== seat.label) {
    return `hold 201 for seats ${JSON.stringify(body.seats)} instead of ["${seat.label}"]`;
  }
  if (body.amountCents !== PRICE_CENTS) return `hold 201 for ${body.amountCents} cents`;
  return null;
}

/** The payment answer must be this booking, confirmed, and its payment captured in full. */
function payViolation(body, hold) {
  if (!body || !body.payment || !body.booking) return 'pay 201 without payment and booking';
  if (body.booking.id !== hold.id) return `pay 201 for booking ${body.booking.id}`;
  if (body.booking.status !== 'confirmed') return `pay 201 with booking ${body.booking.status}`;
  if (body.payment.status !== 'captured') return `pay 201 with payment ${body.payment.status}`;
  if (body.payment.amountCents !== hold.amountCents || body.payment.bookingId !== hold.id) {
    return `pay 201 with payment ${JSON.stringify(body.payment)}`;
  }
  if (JSON.stringify(body.booking.seats) !== JSON.stringify(hold.seats)) {
    return `pay 201 with seats ${JSON.stringify(body.booking.seats)}`;
  }
  return null;
}

async function virtualUser(vu, pool, phase, api) {
  while (!phase.stop) {
    if (hasExited(api)) {
      noteError(phase, 'API exited', api.tail.slice(-5).join('\n'));
      return;
    }
    const seat = pool.seats[pool.next];
    if (!seat) {
      phase.outOfSeats += 1;
      return;
    }
    pool.next += 1;
    const started = performance.now();
    const hold = await send(vu.client, 'POST', '/bookings', {
      token: vu.token,
      body: { eventId: seat.eventId, seatIds: [seat.label] },
    });
    if (hold.status !== 201) {
      noteError(phase, `hold ${hold.status}`, hold.text);
      if (typeof hold.status === 'string') await sleep(50);
      continue;
    }
    const badHold = holdViolation(hold.body, seat);
    if (badHold) {
      phase.violations.push(`${seat.eventId}/${seat.label}: ${badHold}`);
      continue;
    }
    const pay = await send(vu.client, 'POST', `/bookings/${hold.body.id}/payments`, {
      token: vu.token,
      idempotencyKey: randomUUID(),
      body: { paymentMethod: PAYMENT_METHOD },
    });
    if (pay.status !== 201) {
      noteError(phase, `pay ${pay.status}`, pay.text);
      if (typeof pay.status === 'string') await sleep(50);
      continue;
    }
    const badPay = payViolation(pay.body, hold.body);
    if (badPay) {
      phase.violations.push(`booking ${hold.body.id}: ${badPay}`);
      continue;
    }
    phase.cycles.push({
      endedAt: performance.now(),
      hold: hold.ms,
      pay: pay.ms,
      cycle: performance.now() - started,
    });
  }
}

async function runPhase(phase, vus, pool, api) {
  phase.startedAt = performance.now();
  phase.deadline = phase.startedAt + phase.seconds * 1000;
  const timer = setTimeout(() => {
    phase.stop = true;
  }, phase.seconds * 1000);
  try {
    await withTimeout(
      Promise.all(vus.map((vu) => virtualUser(vu, pool, phase, api))),
      phase.seconds * 1000 + TIMEOUTS.request * 2 + 10_000,
      `the ${phase.name} phase`,
    );
  } finally {
    clearTimeout(timer);
    phase.stop = true;
  }
  phase.endedAt = performance.now();
  return phase;
}

function summarizePhase(phase) {
  const inside = phase.cycles.filter((cycle) => cycle.endedAt <= phase.deadline);
  const errorCount = Object.values(phase.errors).reduce((sum, n) => sum + n, 0);
  return {
    seconds: phase.seconds,
    cyclesInWindow: inside.length,
    cyclesTotal: phase.cycles.length,
    bookingsPerSecond: round(inside.length / phase.seconds, 1),
    latencyMs: {
      hold: latencySummary(inside.map((cycle) => cycle.hold)),
      pay: latencySummary(inside.map((cycle) => cycle.pay)),
      cycle: latencySummary(inside.map((cycle) => cycle.cycle)),
    },
    errors: phase.errors,
    errorCount,
    errorSamples: phase.errorSamples,
    invariantViolations: phase.violations.length,
    invariantSamples: phase.violations.slice(0, 10),
    outOfSeats: phase.outOfSeats,
    tailMs: round(phase.endedAt - phase.deadline),
  };
}

// ---------------------------------------------------------------------------------------------
// Where the CPU goes

function cpuSampler(admin, pids) {
  let backends = new Map();
  return new CpuSampler({
    intervalMs: 1000,
    prepare: async () => {
      const { rows } = await admin.query(`SELECT pid, datname FROM pg_stat_activity`);
      backends = new Map(rows.map((row) => [Number(row.pid), row.datname]));
    },
    classify: (proc) => {
      if (proc.pid === pids.api) return 'API (node)';
      if (proc.pid === pids.gateway) return 'gateway simulator (node)';
      if (proc.pid === process.pid) return 'load generator (this node)';
      if (proc.comm === 'redis-server') return 'redis-server';
      if (proc.comm === 'pgbench') return 'pgbench';
      if (proc.comm === 'postgres') {
        const database = backends.get(proc.pid);
        if (database === API_DATABASE) return 'PostgreSQL: API database';
        if (database === GATEWAY_DATABASE) return 'PostgreSQL: simulator database';
        // Postmaster, checkpointer, WAL writer, ... and our own reads of pg_stat_* (`postgres`).
        if (!database || database === 'postgres') return 'PostgreSQL: server processes';
        return null; // another database's backend: someone else's work
      }
      return null;
    },
  });
}

function postgresCores(cpu) {
  return round(
    Object.entries(cpu.groups)
      .filter(([name]) => name.startsWith('PostgreSQL'))
      .reduce((sum, [, group]) => sum + group.cores, 0),
    2,
  );
}

function busiest(cpu) {
  const entries = Object.entries(cpu.groups).map(([name, group]) => [name, group.cores]);
  entries.push(['PostgreSQL (all processes)', postgresCores(cpu)]);
  return entries.filter(([name]) => !name.startsWith('PostgreSQL:')).sort((a, b) => b[1] - a[1]);
}

/** CPU milliseconds each group spent per booking completed in the window. */
function cpuPerBooking(cpu, bookings) {
  if (!bookings) return {};
  return Object.fromEntries(
    Object.entries(cpu.groups).map(([name, group]) => [
      name,
      round((group.cpuSeconds * 1000) / bookings, 2),
    ]),
  );
}

/**
 * What saturates, from the CPU split: a Node process can use one core at most (one event loop);
 * PostgreSQL and the machine as a whole can use every core.
 */
function saturation(cpu, cpus) {
  const api = cpu.groups['API (node)']?.cores ?? 0;
  const gateway = cpu.groups['gateway simulator (node)']?.cores ?? 0;
  const machine = cpu.machineCores;
  if (api >= 0.85) return `the API's Node process: ${api} of the 1 core an event loop can use`;
  if (gateway >= 0.85) return `the simulator's Node process: ${gateway} of 1 core`;
  if (machine !== null && machine >= 0.85 * cpus) {
    return (
      `the machine's CPUs: ${machine} of ${cpus} cores busy, most of it ` +
      `${busiest(cpu)
        .slice(0, 2)
        .map(([name, cores]) => `${name} (${cores})`)
        .join(' and ')}`
    );
  }
  return `nothing saturated (${machine ?? '?'} of ${cpus} cores busy): latency-bound, add customers`;
}

// ---------------------------------------------------------------------------------------------
// The pgbench ceiling: the SQL of one booking, as the API sends it, at the same concurrency

/**
 * One pgbench "transaction" = one booking's 10 PostgreSQL transactions, the statements the API
 * sends (traced with log_statement on the running app), in its order; pgbench variables stand in
 * for the values the app binds. Ids are derived from the client and its cycle number (`seq`, kept
 * per client across cycles), so every cycle books a seat of its own: P<client * k + seq>. The JSON
 * bodies are constants of the app's sizes.
 */
const PGBENCH_SCRIPT = String.raw`\set seq :seq + 1
\set n :client_id * :k + :seq
\set bn (:client_id + 1) * 1000000000 + :seq
BEGIN;
UPDATE seats s SET status = 'free', booking_id = NULL, held_until = NULL
  FROM (SELECT label, booking_id FROM seats
        WHERE event_id = :ev AND label = ANY(ARRAY['P' || :n]) AND status = 'held' AND held_until <= now()
        FOR UPDATE) old
  WHERE s.event_id = :ev AND s.label = old.label
  RETURNING old.booking_id;
WITH token AS (
  SELECT COALESCE(NULL::bigint, greatest(max(fence) + 1,
           (extract(epoch FROM clock_timestamp()) * 1000000)::bigint)) AS value
  FROM seats WHERE event_id = :ev AND label = ANY(ARRAY['P' || :n]))
UPDATE seats s
  SET status = 'held', booking_id = lpad(to_hex(:bn::bigint), 32, '0')::uuid, fence = token.value,
      held_until = now() + make_interval(secs => 300)
  FROM token
  WHERE s.event_id = :ev AND s.label = ANY(ARRAY['P' || :n]) AND s.status = 'free' AND s.fence < token.value
  RETURNING s.label, s.held_until, s.fence AS fence \gset
INSERT INTO bookings (id, customer_id, event_id, status, seat_labels, amount_cents, currency, expires_at, fence)
  VALUES (lpad(to_hex(:bn::bigint), 32, '0')::uuid, lpad(to_hex(:client_id::bigint + 1), 32, 'c')::uuid,
          :ev, 'held', ARRAY['P' || :n], ${PRICE_CENTS}, 'EUR', now() + interval '300 seconds', :fence)
  RETURNING id, customer_id, event_id, status, seat_labels, amount_cents, currency, expires_at, fence, created_at;
INSERT INTO booking_timeline (booking_id, type, detail)
  VALUES (lpad(to_hex(:bn::bigint), 32, '0')::uuid, 'booking.held', :heldtext);
INSERT INTO outbox_messages (id, topic, customer_id, aggregate_id, payload)
  VALUES (gen_random_uuid(), 'booking.held', lpad(to_hex(:client_id::bigint + 1), 32, 'c')::uuid,
          lpad(to_hex(:bn::bigint), 32, '0')::uuid, :payload);
COMMIT;
INSERT INTO idempotency_keys AS k (customer_id, key, fingerprint, state, locked_until, expires_at)
  VALUES (lpad(to_hex(:client_id::bigint + 1), 32, 'c')::uuid, 'pgb-' || :bn, :fp, 'in_flight',
          now() + 50000 * interval '1 millisecond', now() + 24 * interval '1 hour')
  ON CONFLICT (customer_id, key) DO UPDATE
    SET fingerprint = EXCLUDED.fingerprint, state = 'in_flight', response_status = NULL,
        response_body = NULL, locked_until = EXCLUDED.locked_until,
        expires_at = EXCLUDED.expires_at, created_at = now()
    WHERE k.expires_at <= now()
       OR (k.state = 'in_flight' AND k.locked_until <= now() AND k.fingerprint = EXCLUDED.fingerprint)
  RETURNING 1;
SELECT id, customer_id, event_id, status, seat_labels, amount_cents, currency, expires_at, fence, created_at
  FROM bookings WHERE id = lpad(to_hex(:bn::bigint), 32, '0')::uuid
                  AND customer_id = lpad(to_hex(:client_id::bigint + 1), 32, 'c')::uuid;
INSERT INTO payments (id, booking_id, customer_id, status, next_action, amount_cents, currency,
                      payment_method, fence, gateway_idempotency_key)
  VALUES (lpad(to_hex(:bn::bigint), 32, 'a')::uuid, lpad(to_hex(:bn::bigint), 32, '0')::uuid,
          lpad(to_hex(:client_id::bigint + 1), 32, 'c')::uuid, 'pending', 'authorize', ${PRICE_CENTS},
          'EUR', 'pm_card_visa', :fence, 'seatlock-pgb-' || :bn)
  ON CONFLICT (gateway_idempotency_key) DO UPDATE SET attempts = payments.attempts + 1
  RETURNING id, booking_id, customer_id, status, next_action, amount_cents, refunded_cents, currency,
            payment_method, fence, gateway_idempotency_key, gateway_intent_id, failure_code,
            failure_message, created_at;
BEGIN;
SELECT id, booking_id, customer_id, status, next_action, amount_cents, refunded_cents, currency,
       payment_method, fence, gateway_idempotency_key, gateway_intent_id, failure_code,
       failure_message, created_at
  FROM payments WHERE id = lpad(to_hex(:bn::bigint), 32, 'a')::uuid FOR UPDATE;
UPDATE payments SET status = 'authorized', next_action = 'confirm', gateway_intent_id = 'pi_pgb_' || :bn,
                    updated_at = clock_timestamp()
  WHERE id = lpad(to_hex(:bn::bigint), 32, 'a')::uuid
  RETURNING id, booking_id, customer_id, status, next_action, amount_cents, refunded_cents, currency,
            payment_method, fence, gateway_idempotency_key, gateway_intent_id, failure_code,
            failure_message, created_at;
COMMIT;
BEGIN;
SELECT id, booking_id, customer_id, status, next_action, amount_cents, refunded_cents, currency,
       payment_method, fence, gateway_idempotency_key, gateway_intent_id, failure_code,
       failure_message, created_at
  FROM payments WHERE id = lpad(to_hex(:bn::bigint), 32, 'a')::uuid FOR UPDATE;
UPDATE bookings SET status = 'confirmed', updated_at = now()
  WHERE id = lpad(to_hex(:bn::bigint), 32, '0')::uuid AND status = 'held' AND fence = :fence
    AND expires_at > now()
  RETURNING id, customer_id, event_id, status, seat_labels, amount_cents, currency, expires_at, fence, created_at;
UPDATE seats SET status = 'booked', held_until = NULL
  WHERE event_id = :ev AND label = ANY(ARRAY['P' || :n]) AND booking_id = lpad(to_hex(:bn::bigint), 32, '0')::uuid
    AND status = 'held' AND fence = :fence;
INSERT INTO booking_timeline (booking_id, type, detail)
  VALUES (lpad(to_hex(:bn::bigint), 32, '0')::uuid, 'booking.confirmed', :confirmedtext);
INSERT INTO outbox_messages (id, topic, customer_id, aggregate_id, payload)
  VALUES (gen_random_uuid(), 'booking.confirmed', lpad(to_hex(:client_id::bigint + 1), 32, 'c')::uuid,
          lpad(to_hex(:bn::bigint), 32, '0')::uuid, :payload);
UPDATE payments SET next_action = 'capture', updated_at = clock_timestamp()
  WHERE id = lpad(to_hex(:bn::bigint), 32, 'a')::uuid
  RETURNING id, booking_id, customer_id, status, next_action, amount_cents, refunded_cents, currency,
            payment_method, fence, gateway_idempotency_key, gateway_intent_id, failure_code,
            failure_message, created_at;
COMMIT;
BEGIN;
SELECT id, booking_id, customer_id, status, next_action, amount_cents, refunded_cents, currency,
       payment_method, fence, gateway_idempotency_key, gateway_intent_id, failure_code,
       failure_message, created_at
  FROM payments WHERE id = lpad(to_hex(:bn::bigint), 32, 'a')::uuid FOR UPDATE;
UPDATE payments SET status = 'captured', next_action = NULL, updated_at = clock_timestamp()
  WHERE id = lpad(to_hex(:bn::bigint), 32, 'a')::uuid
  RETURNING id, booking_id, customer_id, status, next_action, amount_cents, refunded_cents, currency,
            payment_method, fence, gateway_idempotency_key, gateway_intent_id, failure_code,
            failure_message, created_at;
COMMIT;
SELECT id, customer_id, event_id, status, seat_labels, amount_cents, currency, expires_at, fence, created_at
  FROM bookings WHERE id = lpad(to_hex(:bn::bigint), 32, '0')::uuid;
UPDATE idempotency_keys SET state = 'completed', response_status = 201, response_body = :answer
  WHERE customer_id = lpad(to_hex(:client_id::bigint + 1), 32, 'c')::uuid AND key = 'pgb-' || :bn;
BEGIN;
INSERT INTO gateway_events (id, type) VALUES ('evt_pgb_' || :bn, 'charge.captured')
  ON CONFLICT DO NOTHING RETURNING id;
SELECT id, booking_id, customer_id, status, next_action, amount_cents, refunded_cents, currency,
       payment_method, fence, gateway_idempotency_key, gateway_intent_id, failure_code,
       failure_message, created_at
  FROM payments
  WHERE gateway_intent_id = 'pi_pgb_' || :bn
     OR (gateway_intent_id IS NULL AND id::text = lpad(to_hex(:bn::bigint), 32, 'a')::uuid::text)
  LIMIT 1 FOR UPDATE;
COMMIT;
`;

/** The constants the script binds: bodies of the app's sizes (as traced). */
function pgbenchConstants(eventId, seatsPerClient) {
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
  const answer = {
    payment: {
      id: randomUUID(),
      bookingId: booking.booking.id,
      status: 'captured',
      amountCents: PRICE_CENTS,
      refundedCents: 0,
      currency: 'EUR',
      paymentMethod: PAYMENT_METHOD,
      gatewayIntentId: 'pi_YXD2B0uySjbFhkEFkvNvuvJS',
      failureCode: null,
      failureMessage: null,
      createdAt: new Date().toISOString(),
    },
    booking: { ...booking.booking, status: 'confirmed' },
  };
  return {
    ev: eventId,
    k: String(seatsPerClient),
    seq: '0',
    fp: randomBytes(32).toString('hex'),
    payload: JSON.stringify(booking),
    answer: JSON.stringify(answer),
    heldtext: `Held A1 until ${new Date().toISOString()} (fencing token 1795372520742939)`,
    confirmedtext: `Paid (payment ${randomUUID()}); A1 booked`,
  };
}

async function pgbenchCeiling(options, urls, admin) {
  const binary = findPgbench(options.pgbenchPath);
  if (!binary) {
    return {
      skipped:
        'no pgbench found (Debian: apt-get install postgresql-client-15, which ships ' +
        '/usr/lib/postgresql/15/bin/pgbench); the ceiling is not measured',
    };
  }
  const free = (await availableConnections(admin)) - 5;
  const clients = Math.max(1, Math.min(options.customers, free));
  const seconds = Math.max(1, Math.round(options.duration));
  const seatsPerClient = Math.ceil((PGBENCH_SEAT_BUDGET_PER_SECOND * seconds) / clients) + 100;
  log(`pgbench ceiling: ${clients} clients x ${seconds} s, ${clients * seatsPerClient} seats`);
  const eventId = await withTimeout(
    preparePgbench(urls.api, { clients, seatsPerClient, priceCents: PRICE_CENTS }),
    120_000,
    'preparing the pgbench seats',
  );
  const dir = mkdtempSync(path.join(os.tmpdir(), 'seatlock-flow-pgbench-'));
  try {
    const script = path.join(dir, 'booking.sql');
    writeFileSync(script, PGBENCH_SCRIPT);
    const url = new URL(urls.api);
    const defines = Object.entries(pgbenchConstants(eventId, seatsPerClient)).flatMap(
      ([name, value]) => ['-D', `${name}=${value}`],
    );
    const args = [
      '-n',
      '-M',
      'extended',
      '-c',
      String(clients),
      '-j',
      String(Math.min(clients, os.cpus().length)),
      '-T',
      String(seconds),
      '-f',
      script,
      ...defines,
      '-h',
      url.hostname,
      '-p',
      url.port || '5432',
      '-U',
      decodeURIComponent(url.username || 'postgres'),
      API_DATABASE,
    ];
    const env = { ...process.env, PGPASSWORD: decodeURIComponent(url.password || '') };
    const sampler = cpuSampler(admin, {});
    await sampler.start();
    const run = await children.runToEnd('pgbench', [binary, ...args], env, (seconds + 60) * 1000);
    const cpu = await sampler.stop();
    const parsed = parsePgbench(run.output);
    const truth = await withClient(urls.api, async (client) => {
      const { rows } = await client.query(
        `SELECT (SELECT count(*) FROM bookings WHERE event_id = $1 AND status = 'confirmed')::int
                  AS confirmed,
                (SELECT count(*) FROM seats WHERE event_id = $1 AND status = 'booked')::int AS booked,
                (SELECT count(*) FROM payments p JOIN bookings b ON b.id = p.booking_id
                 WHERE b.event_id = $1 AND p.status = 'captured')::int AS captured`,
        [eventId],
      );
      return rows[0];
    });
    const problems = [];
    if (run.code !== 0) problems.push(`pgbench exited with ${run.code ?? run.signal}`);
    if (parsed.aborted) problems.push('a pgbench client aborted');
    if (parsed.failed) problems.push(`${parsed.failed} failed pgbench transactions`);
    if (parsed.processed !== null && truth.booked < parsed.processed) {
      problems.push(`${parsed.processed} cycles but only ${truth.booked} seats booked`);
    }
    return {
      binary,
      clients,
      clientsRequested: options.customers,
      threads: Math.min(clients, os.cpus().length),
      seconds,
      queryMode: 'extended',
      transactionsPerCycle: 10,
      cyclesPerSecond: parsed.tps === null ? null : round(parsed.tps, 1),
      cycles: parsed.processed,
      latencyAverageMs: parsed.latencyAverageMs,
      postgresCores: postgresCores(cpu),
      postgresCpuMsPerCycle: parsed.tps ? round((postgresCores(cpu) * 1000) / parsed.tps, 2) : null,
      rows: truth,
      cpu,
      problems,
      outputTail: problems.length ? run.output.split('\n').slice(-15).join('\n') : undefined,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// The run

async function run(options, urls, redis, checkLedger) {
  const adminToken = `bench-admin-${randomBytes(16).toString('hex')}`;
  const webhookSecret = `whsec_bench_${randomBytes(16).toString('hex')}`;
  log(`fresh databases ${API_DATABASE} and ${GATEWAY_DATABASE}`);
  await withTimeout(recreateDatabases(urls.admin), 30_000, 'recreating the bench databases');

  const setupAgent = new Agent({ connections: SETUP_CONCURRENCY + 4 });
  const admin = pgClient(urls.admin);
  let gatewayDb = null;
  let api = null;
  let gateway = null;
  let vus = [];
  const report = { ok: false };
  try {
    await admin.connect();
    const [apiPort, gatewayPort] = [await freePort(), await freePort()];
    const gatewayUrl = `http://127.0.0.1:${gatewayPort}`;
    const apiUrl = `http://127.0.0.1:${apiPort}`;

    log(`starting the simulator on ${gatewayUrl} and the API on ${apiUrl}`);
    gateway = children.node('gateway simulator', GATEWAY_MAIN, {
      ...process.env,
      GATEWAY_PORT: String(gatewayPort),
      GATEWAY_HOST: '127.0.0.1',
      GATEWAY_DATABASE_URL: urls.gateway,
      GATEWAY_WEBHOOK_URL: `${apiUrl}/payments/webhook`,
      GATEWAY_WEBHOOK_SECRET: webhookSecret,
      GATEWAY_LOG_LEVEL: 'warn',
    });
    gateway.url = gatewayUrl;
    await untilHealthy(gateway, setupAgent, gatewayUrl, '/health');
    api = children.node(
      'API',
      API_MAIN,
      {
        ...process.env,
        PORT: String(apiPort),
        HOST: '127.0.0.1',
        DATABASE_URL: urls.api,
        REDIS_URL: redis,
        ADMIN_TOKEN: adminToken,
        GATEWAY_URL: gatewayUrl,
        GATEWAY_WEBHOOK_SECRET: webhookSecret,
        RATE_LIMIT_PER_MINUTE: '0',
        LOG_LEVEL: 'warn',
        MIGRATIONS_RUN: 'true',
        SWEEP_INTERVAL_MS: '3600000',
        RECONCILE_INTERVAL_MS: '3600000',
        // The outbox dispatcher's safety-net poll (builds that have one), from once a second to
        // once every 5 s: the counters need 2 quiet seconds to settle. The dispatcher is still woken
        // by NOTIFY for every message a booking writes, and that work counts.
        NOTIFY_POLL_MS: '5000',
      },
      apiNodeOptions(),
    );
    api.url = apiUrl;
    await untilHealthy(api, setupAgent, apiUrl, '/health/ready');
    gatewayDb = pgClient(urls.gateway);
    await gatewayDb.connect();

    // Events: enough seats for SEAT_BUDGET_PER_SECOND over the whole run, each seat used once.
    const seatBudget = Math.max(
      options.customers * 4,
      Math.ceil(SEAT_BUDGET_PER_SECOND * (options.warmup + options.duration)),
    );
    const eventCount = Math.ceil(seatBudget / SEATS_PER_EVENT);
    log(`creating ${eventCount} events of ${SEATS_PER_EVENT} seats`);
    const events = await withTimeout(
      createEvents(setupAgent, api, eventCount, adminToken, 0),
      120_000,
      'creating events',
    );
    const pool = { seats: interleave(events), next: 0 };

    log(`registering ${options.customers} customers`);
    const runId = randomBytes(4).toString('hex');
    const customers = await withTimeout(
      mapLimit(
        Array.from({ length: options.customers }, (_, i) => i),
        SETUP_CONCURRENCY,
        async (i) =>
          expectStatus(
            await call(setupAgent, apiUrl, 'POST', '/customers', {
              body: { email: `flow-${runId}-${i}@example.test`, name: `Flow Customer ${i}` },
            }),
            201,
            'POST /customers',
          ),
      ),
      Math.max(60_000, options.customers * 100),
      'registering customers',
    );
    vus = customers.map((customer) => ({
      token: customer.token,
      client: new HttpClient(apiUrl, {
        pipelining: 1,
        keepAliveTimeout: 120_000,
        keepAliveMaxTimeout: 120_000,
        headersTimeout: TIMEOUTS.request,
        bodyTimeout: TIMEOUTS.request,
        connect: { timeout: 10_000 },
      }),
    }));

    // Warm-up: connections, JIT, token and seat-map caches, the pool.
    const warmup = newPhase('warm-up', options.warmup);
    if (options.warmup > 0) {
      log(`warm-up: ${options.customers} customers for ${options.warmup} s`);
      await runPhase(warmup, vus, pool, api);
      const rate = warmup.cycles.length / options.warmup;
      log(`warm-up: ${warmup.cycles.length} cycles (${round(rate, 1)}/s)`);
      const needed = Math.ceil(rate * options.duration * 2) + options.customers * 2;
      const left = pool.seats.length - pool.next;
      if (needed > left) {
        const more = Math.min(50, Math.ceil((needed - left) / SEATS_PER_EVENT));
        log(`topping up: ${more} more events`);
        const extra = await withTimeout(
          createEvents(setupAgent, api, more, adminToken, events.length),
          120_000,
          'creating more events',
        );
        // Load their seat maps now (one hold each, released), not inside the measured window.
        for (const event of extra) {
          const label = event.labels.pop();
          const held = expectStatus(
            await call(setupAgent, apiUrl, 'POST', '/bookings', {
              token: customers[0].token,
              body: { eventId: event.id, seatIds: [label] },
            }),
            201,
            'POST /bookings (seat-map warm-up)',
          );
          expectStatus(
            await call(setupAgent, apiUrl, 'DELETE', `/bookings/${held.id}`, {
              token: customers[0].token,
            }),
            200,
            'DELETE /bookings/{id}',
          );
        }
        pool.seats = pool.seats.slice(pool.next).concat(interleave(extra));
        pool.next = 0;
      }
    }
    const warmupDone = Date.now();

    log('waiting until the webhooks and the outbox are delivered and the counters published');
    await drainWebhooks(gatewayDb);
    const outboxBefore = await drainOutbox(urls.api);
    const gatewayXactsBeforeSettle = await databaseCounters(admin, GATEWAY_DATABASE);
    const before = await settle(admin, warmupDone);
    const gatewayXactsBefore = await databaseCounters(admin, GATEWAY_DATABASE);
    const gatewayBefore = await gatewayCounts(gatewayDb);
    const metricsBefore = parseMetrics(
      expectStatus(
        await call(setupAgent, apiUrl, 'GET', '/metrics'),
        200,
        'GET /metrics',
      ).toString(),
    );
    const apiLogBefore = logSnapshot(api);
    const gatewayLogBefore = logSnapshot(gateway);

    // The measured window.
    log(`measuring: ${options.customers} customers for ${options.duration} s`);
    const measured = newPhase('measured', options.duration);
    const sampler = cpuSampler(admin, { api: api.child.pid, gateway: gateway.child.pid });
    await sampler.start();
    const cpuStop = sleep(options.duration * 1000).then(() => sampler.stop());
    await runPhase(measured, vus, pool, api);
    const cpu = await cpuStop;
    const summary = summarizePhase(measured);
    log(
      `measured: ${summary.cyclesInWindow} bookings in ${options.duration} s = ` +
        `${summary.bookingsPerSecond}/s`,
    );

    const metricsAfter = parseMetrics(
      expectStatus(
        await call(setupAgent, apiUrl, 'GET', '/metrics'),
        200,
        'GET /metrics',
      ).toString(),
    );
    log('waiting until the webhooks and the outbox are delivered and the counters published');
    await drainWebhooks(gatewayDb);
    const outboxAfter = await drainOutbox(urls.api);
    await drainWebhooks(gatewayDb);
    const after = await settle(admin, Date.now());
    const gatewayXactsAfter = await databaseCounters(admin, GATEWAY_DATABASE);
    const gatewayAfter = await gatewayCounts(gatewayDb);
    const apiLog = logSince(api, apiLogBefore);
    const gatewayLog = logSince(gateway, gatewayLogBefore);

    // Our connections first: a graceful shutdown would otherwise wait for them.
    await Promise.all(vus.map((vu) => vu.client.destroy().catch(() => undefined)));
    vus = [];
    log('stopping the API, then checking that the counters did not move');
    const apiExit = await children.stop(api);
    const afterExit = await settle(admin, Date.now());
    const lateByExit = subtract(afterExit.counters, after.counters);

    // Correctness: the ledger (every booking, every intent), then the rows against our counts.
    log('check:ledger over everything (compiled checker from dist/)');
    const ledger = await withTimeout(
      checkLedger({ databaseUrl: urls.api, gatewayUrl, settleMs: 5_000 }),
      TIMEOUTS.ledger,
      'check:ledger',
    );
    const truth = await databaseTruth(urls.api);
    const gatewayFinal = await gatewayCounts(gatewayDb);
    await gatewayDb.end().catch(() => undefined);
    gatewayDb = null;
    const gatewayExit = await children.stop(gateway);

    // The ceiling, with the app and the simulator stopped.
    let ceiling = { skipped: '--no-pgbench' };
    if (options.pgbench) {
      // Auxiliary: a ceiling that cannot run (say, a schema the script no longer fits) is reported,
      // it does not fail the flow's verdict.
      ceiling = await pgbenchCeiling(options, urls, admin).catch((error) => ({
        skipped: `the pgbench ceiling failed: ${error.message}`,
        problems: [error.message],
      }));
    }

    // -----------------------------------------------------------------------------------------
    const database = subtract(after.counters, before.counters);
    // Our outbox reads in the window: one transaction each (a failed one rolled back), plus
    // their session's start-up.
    database.xact_commit -= 1 + (outboxAfter.error ? outboxAfter.reads - 1 : outboxAfter.reads);
    database.xact_rollback -= outboxAfter.error ? 1 : 0;
    database.sessions -= 1;
    const transactions = database.xact_commit + database.xact_rollback;
    const bookings = measured.cycles.length; // every booking the measured phase made
    const perBooking = (n) => (bookings > 0 ? round(n / bookings, 2) : null);
    const gatewayDelta = subtract(gatewayAfter, gatewayBefore);
    const idleSeconds = (gatewayXactsBefore.at - gatewayXactsBeforeSettle.at) / 1000;
    const gatewayIdleRate =
      idleSeconds > 0
        ? (gatewayXactsBefore.counters.xact_commit +
            gatewayXactsBefore.counters.xact_rollback -
            gatewayXactsBeforeSettle.counters.xact_commit -
            gatewayXactsBeforeSettle.counters.xact_rollback) /
          idleSeconds
        : 0;
    const gatewayXacts =
      gatewayXactsAfter.counters.xact_commit +
      gatewayXactsAfter.counters.xact_rollback -
      gatewayXactsBefore.counters.xact_commit -
      gatewayXactsBefore.counters.xact_rollback;
    const gatewaySeconds = (gatewayXactsAfter.at - gatewayXactsBefore.at) / 1000;
    const gatewayNet = gatewayXacts - gatewayIdleRate * gatewaySeconds;

    const totalCycles = warmup.cycles.length + measured.cycles.length;
    const invariants = [...warmup.violations, ...measured.violations];
    // A payment whose answer we lost (a client-side timeout, say) may still have completed.
    const unanswered = [warmup, measured]
      .flatMap((phase) => Object.entries(phase.errors))
      .filter(([key]) => key.startsWith('pay '))
      .reduce((sum, [, n]) => sum + n, 0);
    const matches = (n) => n >= totalCycles && n <= totalCycles + unanswered;
    const expected = unanswered ? `${totalCycles} to ${totalCycles + unanswered}` : totalCycles;
    const confirmed = truth.bookings.confirmed || 0;
    if (!matches(confirmed)) {
      invariants.push(`${confirmed} confirmed bookings in PostgreSQL, expected ${expected}`);
    }
    if (truth.seats.booked !== confirmed) {
      invariants.push(`${truth.seats.booked} seats booked, ${confirmed} bookings confirmed`);
    }
    if (truth.seats.booked_without_confirmed_booking > 0) {
      invariants.push(
        `${truth.seats.booked_without_confirmed_booking} booked seats without a confirmed booking`,
      );
    }
    if (!matches(truth.payments.captured || 0)) {
      invariants.push(`${truth.payments.captured || 0} captured payments, expected ${expected}`);
    }
    if (!matches(gatewayFinal.captured_intents)) {
      invariants.push(
        `${gatewayFinal.captured_intents} captured intents at the gateway, expected ${expected}`,
      );
    }

    const anomalies = [];
    if (!before.settled || !after.settled) {
      anomalies.push('PostgreSQL counters did not settle in time');
    }
    // A LISTEN session reads each NOTIFY in a transaction of its own and publishes those counts
    // only when it exits: expected then, reported apart.
    const listening = before.listenSessions > 0;
    const moved = Object.entries(lateByExit).filter(
      ([name, n]) =>
        n !== 0 &&
        name !== 'sessions' &&
        name !== 'tup_fetched' &&
        !(listening && name === 'xact_commit'),
    );
    if (moved.length > 0) {
      anomalies.push(
        `API database counters moved after the API exited: ${JSON.stringify(Object.fromEntries(moved))}`,
      );
    }
    if (summary.errorCount > 0) {
      anomalies.push(`${summary.errorCount} cycles failed: ${JSON.stringify(summary.errors)}`);
      for (const [key, sample] of Object.entries(summary.errorSamples)) {
        anomalies.push(`  first "${key}": ${sample}`);
      }
    }
    if (Object.keys(warmup.errors).length > 0) {
      anomalies.push(`warm-up errors: ${JSON.stringify(warmup.errors)}`);
    }
    if (measured.outOfSeats > 0) anomalies.push('ran out of seats during the measured window');
    if (outboxAfter.error) anomalies.push(`could not read the outbox: ${outboxAfter.error}`);
    else if (outboxAfter.pending > 0) {
      anomalies.push(
        `${outboxAfter.pending} outbox messages still pending ${outboxAfter.waitedMs} ms after the ` +
          'window (this build has no dispatcher, or it stalled)',
      );
    }
    const errorLines = apiLog.levels.error + apiLog.levels.fatal;
    if (errorLines > 0) {
      anomalies.push(`${errorLines} error log lines from the API during the window`);
    }
    if (gatewayFinal.webhooks_failed > 0) {
      anomalies.push(`${gatewayFinal.webhooks_failed} webhooks the simulator gave up on`);
    }
    if (cpu.otherCores !== null && cpu.otherCores > BUSY_MACHINE_CORES) {
      anomalies.push(
        `other processes used ${cpu.otherCores} cores during the window: the machine was shared`,
      );
    }
    const ceilingOthers = ceiling.cpu ? ceiling.cpu.otherCores : null;
    if (ceilingOthers !== null && ceilingOthers > BUSY_MACHINE_CORES) {
      anomalies.push(
        `other processes used ${ceilingOthers} cores during pgbench: the ceiling reads low`,
      );
    }
    if (ceiling.problems && ceiling.problems.length > 0) {
      anomalies.push(`pgbench ceiling: ${ceiling.problems.join('; ')}`);
    }
    const appTransactions = perBooking(transactions - database.sessions);
    if (ceiling.transactionsPerCycle && appTransactions !== null) {
      if (Math.abs(appTransactions - ceiling.transactionsPerCycle) >= 0.5) {
        anomalies.push(
          `the app ran ${appTransactions} transactions per booking, the pgbench script replays ` +
            `${ceiling.transactionsPerCycle} (the flow as traced): the ceiling leaves the rest out`,
        );
      }
    }
    if (ceiling.clients && ceiling.clients < options.customers) {
      anomalies.push(
        `pgbench ran ${ceiling.clients} clients, not ${options.customers}: max_connections is short`,
      );
    }

    const ratio =
      ceiling.cyclesPerSecond && summary.bookingsPerSecond !== null
        ? round(summary.bookingsPerSecond / ceiling.cyclesPerSecond, 3)
        : null;
    const versusReference = round(summary.bookingsPerSecond / REFERENCE.cyclesPerSecond, 2);

    Object.assign(report, {
      benchmark: 'flow',
      customers: options.customers,
      durationSeconds: options.duration,
      warmupSeconds: options.warmup,
      machine: {
        cpus: os.cpus().length,
        cpuModel: (os.cpus()[0] || {}).model || 'unknown',
        memoryGiB: round(os.totalmem() / 2 ** 30, 1),
        node: process.version,
      },
      apiSettings: {
        dbPoolSize: Number(process.env.DB_POOL_SIZE || 10),
        lockMode: process.env.LOCK_MODE || 'redis',
        webhooks: 'simulator -> API /payments/webhook',
      },
      warmup: { cycles: warmup.cycles.length, errors: warmup.errors },
      measured: summary,
      bookingsPerSecond: summary.bookingsPerSecond,
      postgres: {
        bookings,
        transactions,
        commits: database.xact_commit,
        rollbacks: database.xact_rollback,
        newSessions: database.sessions,
        transactionsExclSessionStartups: transactions - database.sessions,
        transactionsPerBooking: perBooking(transactions),
        transactionsPerBookingExclSessionStartups: perBooking(transactions - database.sessions),
        rowWritesPerBooking: perBooking(
          database.tup_inserted + database.tup_updated + database.tup_deleted,
        ),
        listenSessions: before.listenSessions,
        publishedAtApiExit: lateByExit.xact_commit + lateByExit.xact_rollback,
        publishedAtApiExitPerBooking: round(
          (lateByExit.xact_commit + lateByExit.xact_rollback) / Math.max(1, totalCycles),
          2,
        ),
        statsSettled: before.settled && after.settled,
        statsWaitMs: { before: before.waitedMs, after: after.waitedMs },
        movedAfterExit: lateByExit,
      },
      gateway: {
        intentsPerBooking: perBooking(gatewayDelta.intents),
        postsPerBooking: perBooking(gatewayDelta.idempotent_posts),
        webhooksPerBooking: perBooking(gatewayDelta.webhooks),
        refunds: gatewayDelta.refunds,
        simulatorTransactionsPerBooking: perBooking(gatewayNet),
        simulatorIdleTransactionsPerSecond: round(gatewayIdleRate, 1),
        counts: gatewayDelta,
      },
      outbox: {
        pendingAfterWarmup: outboxBefore.pending ?? null,
        pendingAtWindowEnd: outboxAfter.pendingAtStart ?? null,
        pendingAtEnd: outboxAfter.pending ?? null,
        drainMs: outboxAfter.waitedMs ?? null,
        error: outboxAfter.error,
      },
      metrics: metricsDelta(metricsBefore, metricsAfter),
      cpu,
      cpuMsPerBooking: cpuPerBooking(cpu, summary.cyclesInWindow),
      limitedBy: saturation(cpu, os.cpus().length),
      ledger: {
        clean: ledger.violations.length === 0,
        violations: ledger.violations.length,
        violationSamples: ledger.violations.slice(0, 20),
        intents: ledger.intents,
        capturedIntents: ledger.capturedIntents,
        bookings: ledger.bookings,
        confirmedBookings: ledger.confirmedBookings,
        bookedSeats: ledger.bookedSeats,
        payments: ledger.payments,
        attempts: ledger.attempts,
      },
      rows: { ...truth, cyclesCounted: totalCycles },
      invariantViolations: invariants,
      ceiling,
      ratioToCeiling: ratio,
      reference: {
        ...REFERENCE,
        ours: summary.bookingsPerSecond,
        oursOverReference: versusReference,
        faster: summary.bookingsPerSecond > REFERENCE.cyclesPerSecond ? 'ours' : 'reference',
      },
      logs: { api: apiLog, gateway: gatewayLog },
      exits: { api: apiExit, gateway: gatewayExit },
      anomalies,
    });
    report.ok = invariants.length === 0 && ledger.violations.length === 0;
    return report;
  } catch (error) {
    for (const proc of [api, gateway]) {
      if (proc && proc.tail.length > 0) log(`last ${proc.name} output:\n${proc.tail.join('\n')}`);
    }
    throw error;
  } finally {
    await Promise.all(vus.map((vu) => vu.client.destroy().catch(() => undefined)));
    await setupAgent.destroy().catch(() => undefined);
    if (gatewayDb) await gatewayDb.end().catch(() => undefined);
    await children.stopAll();
    await admin.end().catch(() => undefined);
  }
}

// ---------------------------------------------------------------------------------------------
// Report

function table(rows) {
  const cells = rows.map((row) => (row ? row.map(String) : null));
  const widths = [0, 1].map((i) => Math.max(...cells.filter(Boolean).map((row) => row[i].length)));
  const rule = '-'.repeat(widths[0] + widths[1] + 2);
  return cells.map((row) =>
    row ? `${row[0].padEnd(widths[0])}  ${row[1].padStart(widths[1])}` : rule,
  );
}

function ms(summary) {
  return summary.n === 0 ? '-' : `${summary.p50} / ${summary.p99} ms`;
}

function printReport(report) {
  const m = report.measured;
  const pg = report.postgres;
  const gw = report.gateway;
  const c = report.ceiling;
  const errors = Object.entries(m.errors);
  const rows = [
    ['customers (one connection each)', report.customers],
    ['measured window', `${report.durationSeconds} s (after ${report.warmupSeconds} s warm-up)`],
    null,
    ['bookings/s (hold -> pay -> confirmed)', m.bookingsPerSecond],
    ['bookings in the window', m.cyclesInWindow],
    ['latency p50 / p99: hold', ms(m.latencyMs.hold)],
    ['latency p50 / p99: pay', ms(m.latencyMs.pay)],
    ['latency p50 / p99: cycle', ms(m.latencyMs.cycle)],
    ['errors by status', errors.length ? errors.map(([k, n]) => `${k}: ${n}`).join(', ') : 'none'],
    ['invariant violations', report.invariantViolations.length],
    null,
    ['PG transactions per booking (API database)', pg.transactionsPerBooking],
    ['  excl. session start-ups', pg.transactionsPerBookingExclSessionStartups],
    [
      '  transactions / new sessions / bookings',
      `${pg.transactions} / ${pg.newSessions} / ${pg.bookings}`,
    ],
    [
      '  + published only at the API exit (LISTEN)',
      `${pg.publishedAtApiExit} (${pg.publishedAtApiExitPerBooking}/booking, all bookings)`,
    ],
    ['PG row writes per booking', pg.rowWritesPerBooking],
    [
      'outbox pending: window end / after drain',
      `${report.outbox.pendingAtWindowEnd ?? '-'} / ${report.outbox.pendingAtEnd ?? '-'}`,
    ],
    ['gateway intents per booking', gw.intentsPerBooking],
    ['gateway POSTs per booking (authorize, capture)', gw.postsPerBooking],
    ['gateway webhooks per booking', gw.webhooksPerBooking],
    ['simulator DB transactions per booking', gw.simulatorTransactionsPerBooking],
    null,
  ];
  for (const [name, group] of Object.entries(report.cpu.groups).sort(
    (a, b) => b[1].cores - a[1].cores,
  )) {
    const perBooking = report.cpuMsPerBooking[name];
    rows.push([`CPU: ${name}`, `${group.cores.toFixed(2)} cores, ${perBooking ?? '-'} ms/booking`]);
  }
  const ours = Object.values(report.cpuMsPerBooking).reduce((sum, n) => sum + n, 0);
  rows.push(['CPU: all of the above', `${round(ours, 1)} ms/booking`]);
  rows.push(['CPU: other processes (not ours)', `${report.cpu.otherCores ?? '-'} cores`]);
  rows.push([
    'CPU: whole machine',
    `${report.cpu.machineCores ?? '-'} of ${report.machine.cpus} cores`,
  ]);
  rows.push(null);
  if (c.cyclesPerSecond) {
    rows.push([
      `pgbench ceiling (${c.clients} clients, same SQL)`,
      `${c.cyclesPerSecond} cycles/s`,
    ]);
    rows.push([
      '  PostgreSQL meanwhile',
      `${c.postgresCores} cores, ${c.postgresCpuMsPerCycle} ms/cycle`,
    ]);
    rows.push(['bookings/s / ceiling', c.cyclesPerSecond ? `${report.ratioToCeiling}` : '-']);
  } else {
    rows.push(['pgbench ceiling', 'skipped']);
  }
  rows.push([REFERENCE.name, `${REFERENCE.cyclesPerSecond} cycles/s`]);
  rows.push(['ours / reference', `${report.reference.oursOverReference}x`]);
  rows.push(null);
  rows.push([
    'check:ledger',
    report.ledger.clean ? 'clean' : `${report.ledger.violations} violations`,
  ]);
  const out = [
    '',
    `Payment flow: ${report.customers} customers, hold -> pay (${PAYMENT_METHOD}) -> confirmed`,
    ...table([null, ...rows, null]),
  ];
  if (c.skipped) out.push(`pgbench: ${c.skipped}`);
  const faster =
    report.reference.faster === 'ours'
      ? `ours is faster, ${report.reference.oursOverReference}x the reference`
      : `the reference is faster: ours is ${report.reference.oursOverReference}x its figure`;
  out.push(
    `Versus the reference: ${report.bookingsPerSecond} bookings/s with payment (authorize + capture ` +
      `at the gateway, idempotency, webhook) beside ${REFERENCE.cyclesPerSecond} cycles/s hold -> ` +
      `confirm without payment: ${faster}.`,
  );
  out.push(
    `Limited by: ${report.limitedBy}. Busiest: ${busiest(report.cpu)
      .slice(0, 3)
      .map(([name, cores]) => `${name} ${cores}`)
      .join(', ')} cores.`,
  );
  out.push(
    `Ledger: ${report.ledger.intents} intents (${report.ledger.capturedIntents} captured), ` +
      `${report.ledger.bookings} bookings (${report.ledger.confirmedBookings} confirmed), ` +
      `${report.ledger.bookedSeats} booked seats, ${report.ledger.payments} payments` +
      (report.ledger.clean ? ': clean.' : ':'),
  );
  for (const violation of report.ledger.violationSamples) out.push(`  ${violation}`);
  for (const violation of report.invariantViolations.slice(0, 20))
    out.push(`! invariant: ${violation}`);
  for (const note of report.anomalies) out.push(`! ${note}`);
  const messages = Object.entries(report.logs.api.messages);
  if (messages.length > 0) {
    out.push('API log during the window (warn and above, most frequent first):');
    for (const [message, n] of messages) out.push(`  ${String(n).padStart(5)}  ${message}`);
  }
  out.push(report.ok ? 'OK' : 'FAILED');
  process.stdout.write(`${out.join('\n')}\n`);
}

// ---------------------------------------------------------------------------------------------

async function main() {
  const options = parseArgs(process.argv.slice(2));
  for (const file of [API_MAIN, GATEWAY_MAIN, LEDGER_CHECK]) {
    if (!existsSync(file)) throw new BenchError(`${file} is missing: run \`npm run build\` first`);
  }
  // Loaded now: a rebuild that empties dist/ during the run must not take the checker away.
  const { checkLedger } = require(LEDGER_CHECK);
  const urls = databaseUrls();
  const redis = localRedisUrl();
  await requireRedis(redis);

  let report;
  try {
    report = await run(options, urls, redis, checkLedger);
  } finally {
    await withTimeout(dropDatabases(urls.admin), 30_000, 'dropping the bench databases').catch(
      (error) => log(`could not drop the bench databases: ${error.message}`),
    );
  }
  printReport(report);
  if (options.json) process.stdout.write(`${JSON.stringify(report)}\n`);
  return report.ok ? 0 : 1;
}

runBenchmarkMain({
  benchmark: 'flow',
  main,
  children,
  log,
  totalMs: TIMEOUTS.total,
  cleanUp: () => dropDatabases(databaseUrls().admin),
});
