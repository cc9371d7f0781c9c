'use strict';

/*
 * Stampede benchmark: N customers press "book" on the same seat at the same instant.
 *
 *   npm run bench:stampede -- --contenders 1000 [--json] [--cold]
 *
 * For LOCK_MODE=redis and LOCK_MODE=off it starts the BUILT API as a child process on a fresh
 * database of its own (seatlock_bench, dropped and recreated per mode), creates an event, registers
 * N customers, then fires N concurrent `POST /bookings {seatIds:['A1']}` and measures what reached
 * PostgreSQL (pg_stat_database / pg_stat_user_tables deltas) and what the app says it answered from
 * Redis alone (seatlock_holds_total). Exactly one winner per mode, or the exit code is 1.
 *
 * Fair by construction: before the stampede every customer's bearer token and the event's seat map
 * are already cached by the app (customers who were browsing when the sale opened), and every
 * connection is already open, so the measured window holds the booking requests only. `--cold`
 * skips that warm-up (each contender then also reads its token, and the first ones the seat map,
 * from PostgreSQL).
 * The hold sweeper is slowed to once an hour: its once-a-second query would otherwise count.
 * Rate limits are switched off (RATE_LIMIT_PER_MINUTE=0), as for every load test.
 *
 * PostgreSQL 15 publishes a backend's counters at most once a second and, once the backend is idle,
 * up to 10 s later (at once when it exits); both snapshots therefore wait until the app's pool has
 * closed its idle sessions and the counters stood still for 2 s (about 12 s), and the second one is
 * checked again after the API exited. Each new session commits one start-up transaction: reported
 * apart. The bench reads the counters from the `postgres` database; its few queries on the bench
 * database fall outside the measured window.
 */

const { randomBytes } = require('node:crypto');
const { existsSync } = require('node:fs');
const path = require('node:path');
const { setTimeout: sleep } = require('node:timers/promises');
const { Client } = require('pg');
const { Agent, request } = require('undici');
const {
  BenchError,
  benchDatabaseName,
  freePort,
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
  logSince,
  logSnapshot,
  runBenchmarkMain,
  waitHealthy,
} = require('./bench-children');
const { expectStatus, httpCaller } = require('./bench-http');
const { withClient } = require('./bench-postgres');

const ROOT = path.resolve(__dirname, '..', '..');
const MAIN = path.join(ROOT, 'dist', 'apps', 'api', 'apps', 'api', 'src', 'main.js');
const BENCH_DATABASE = benchDatabaseName('seatlock_bench');
const MODES = ['redis', 'off'];
const SEAT = 'A1';

const SETUP_CONCURRENCY = 50;
const STATS_POLL_MS = 250;
/** PGSTAT_IDLE_INTERVAL (10 s) plus a margin: pending counters of an idle backend are out by then. */
const STATS_QUIET_MS = 12_000;
const STATS_STABLE_MS = 2_000;
const STATS_MAX_WAIT_MS = 20_000;

const TIMEOUTS = {
  total: 15 * 60_000,
  ready: 60_000,
  request: 15_000,
  stampede: 120_000,
  stop: 10_000,
};

const USAGE = `Usage: npm run bench:stampede -- [--contenders N] [--json] [--cold]

  --contenders N  concurrent POST /bookings for the same seat (default 1000)
  --json          also print one JSON object as the last line of stdout
  --cold          skip the warm-up (token and seat-map caches, pre-opened connections)

Environment: DATABASE_URL (only its server is used; the bench database is ${BENCH_DATABASE}),
REDIS_URL (default redis://127.0.0.1:6379). Both must point at this machine (loopback).`;

// ---------------------------------------------------------------------------------------------
// Small helpers

function log(message) {
  process.stderr.write(`[stampede] ${message}\n`);
}

function parseArgs(argv) {
  const options = { contenders: 1000, json: false, warm: true };
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i];
    if (arg === '--json') options.json = true;
    else if (arg === '--cold') options.warm = false;
    else if (arg === '--help' || arg === '-h') {
      process.stdout.write(`${USAGE}\n`);
      process.exit(0);
    } else if (arg === '--contenders' || arg.startsWith('--contenders=')) {
      const value = arg.includes('=') ? arg.slice(arg.indexOf('=') + 1) : argv[(i += 1)];
      if (!/^\d+$/.test(value ?? '') || Number(value) < 1 || Number(value) > 10_000) {
        throw new BenchError(`--contenders needs an integer from 1 to 10000, got ${value}`);
      }
      options.contenders = Number(value);
    } else {
      throw new BenchError(`unknown argument ${arg}\n${USAGE}`);
    }
  }
  return options;
}

/** Runs `work(item, index)` over `items` with at most `limit` in flight; answers results in order. */
async function mapLimit(items, limit, work) {
  const results = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next;
      next += 1;
      results[index] = await work(items[index], index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

const databaseUrls = () => localDatabaseUrls({ bench: BENCH_DATABASE });

// ---------------------------------------------------------------------------------------------
// HTTP

const call = httpCaller({ timeoutMs: TIMEOUTS.request });

/** `seatlock_*` samples of the Prometheus text, keyed `name{labels}`. */
function parseMetrics(text) {
  const samples = {};
  for (const line of text.split('\n')) {
    const match = /^(seatlock_[a-z_]+(?:\{[^}]*\})?) ([0-9.eE+-]+|NaN)$/.exec(line.trim());
    if (match) samples[match[1]] = Number(match[2]);
  }
  return samples;
}

function metricDelta(before, after, name) {
  return (after[name] || 0) - (before[name] || 0);
}

// ---------------------------------------------------------------------------------------------
// The API under test, as a child process

const children = new ChildProcesses({ cwd: ROOT, stopTimeoutMs: TIMEOUTS.stop, log });

function startApi({ mode, port, databaseUrl, redis, adminToken }) {
  const api = children.node(
    `API (${mode})`,
    MAIN,
    {
      ...process.env,
      DATABASE_URL: databaseUrl,
      REDIS_URL: redis,
      PORT: String(port),
      HOST: '127.0.0.1',
      LOCK_MODE: mode,
      // Holds only: no payment gateway is needed, so the API must not start a simulator of its own.
      GATEWAY_URL: 'http://127.0.0.1:9',
      ADMIN_TOKEN: adminToken,
      LOG_LEVEL: 'warn',
      MIGRATIONS_RUN: 'true',
      SWEEP_INTERVAL_MS: '3600000',
      // Background polls (payment reconciler, outbox safety net) would count as stampede traffic;
      // the outbox still wakes on NOTIFY for the winner's message.
      RECONCILE_INTERVAL_MS: '3600000',
      NOTIFY_POLL_MS: '3600000',
      // Per token (per IP without one): the guard stays on, but registering N customers from one
      // address must not trip it.
      RATE_LIMIT_PER_MINUTE: '0',
    },
    apiNodeOptions(),
  );
  api.mode = mode;
  api.url = `http://127.0.0.1:${port}`;
  return api;
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL

async function recreateDatabase(adminUrl) {
  await withClient(adminUrl, async (client) => {
    await client.query(`DROP DATABASE IF EXISTS ${BENCH_DATABASE} WITH (FORCE)`);
    await client.query(`CREATE DATABASE ${BENCH_DATABASE}`);
  });
}

async function dropDatabase(adminUrl) {
  await withClient(adminUrl, (client) =>
    client.query(`DROP DATABASE IF EXISTS ${BENCH_DATABASE} WITH (FORCE)`),
  );
}

const DATABASE_COUNTERS = [
  'sessions',
  'xact_commit',
  'xact_rollback',
  'tup_inserted',
  'tup_updated',
  'tup_deleted',
];

/**
 * pg_stat_database of the bench database, and how many sessions are open on it, read from the
 * `postgres` database (so reading adds nothing to the bench database's counters).
 */
async function databaseCounters(admin) {
  const { rows } = await admin.query(
    `SELECT ${DATABASE_COUNTERS.join(', ')},
            (SELECT count(*) FROM pg_stat_activity
             WHERE datname = $1 AND backend_type = 'client backend') AS open_sessions
     FROM pg_stat_database WHERE datname = $1`,
    [BENCH_DATABASE],
  );
  if (rows.length === 0) throw new BenchError(`no pg_stat_database row for ${BENCH_DATABASE}`);
  return {
    counters: Object.fromEntries(DATABASE_COUNTERS.map((name) => [name, Number(rows[0][name])])),
    openSessions: Number(rows[0].open_sessions),
  };
}

/**
 * pg_stat_user_tables of `seats` needs a connection to the bench database; the caller makes it
 * before the first settle (so its own transactions are published before that snapshot) and after
 * the second one. `vacuum` first leaves autovacuum nothing to do during the measurement.
 */
async function seatCounters(benchUrl, { vacuum = false } = {}) {
  return withClient(benchUrl, async (client) => {
    if (vacuum) await client.query('VACUUM ANALYZE');
    const { rows } = await client.query(
      `SELECT n_tup_ins, n_tup_upd, n_tup_hot_upd, n_tup_del FROM pg_stat_user_tables
       WHERE relname = 'seats'`,
    );
    return Object.fromEntries(Object.entries(rows[0]).map(([key, value]) => [key, Number(value)]));
  });
}

function sameCounters(a, b) {
  return DATABASE_COUNTERS.every((name) => a[name] === b[name]);
}

/**
 * Waits until the bench database's counters are complete. PostgreSQL 15 publishes a backend's
 * counters at most once a second, an idle backend's last ones up to 10 s later, and everything when
 * the backend exits. The app's pool (pg-pool) closes connections idle for 10 s, so the sure sign is
 * "no session open on the bench database and the counters unchanged for 2 s"; should sessions stay
 * open, STATS_QUIET_MS since the app's last request stands in. Gives up after STATS_MAX_WAIT_MS
 * (reported as not settled).
 */
async function settle(admin, quietSince) {
  const started = Date.now();
  let { counters, openSessions } = await databaseCounters(admin);
  let changedAt = started;
  let changes = 0;
  for (;;) {
    const now = Date.now();
    const stable = now - changedAt >= STATS_STABLE_MS;
    const drained = openSessions === 0 || now - quietSince >= STATS_QUIET_MS;
    const done = stable && drained;
    if (done || now - started >= STATS_MAX_WAIT_MS) {
      return {
        counters,
        settled: done,
        waitedMs: now - started,
        changes,
        openSessions,
      };
    }
    await sleep(STATS_POLL_MS);
    const next = await databaseCounters(admin);
    openSessions = next.openSessions;
    if (!sameCounters(next.counters, counters)) {
      counters = next.counters;
      changedAt = Date.now();
      changes += 1;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// One mode

async function runMode(mode, options, urls, redis) {
  const { contenders } = options;
  const adminToken = `bench-admin-${randomBytes(16).toString('hex')}`;
  log(`[${mode}] fresh database ${BENCH_DATABASE}`);
  await withTimeout(recreateDatabase(urls.admin), 30_000, 'recreating the bench database');

  const setupAgent = new Agent({ connections: SETUP_CONCURRENCY + 10 });
  const stampedeAgent = new Agent({
    connections: contenders,
    pipelining: 1,
    keepAliveTimeout: 120_000,
    keepAliveMaxTimeout: 120_000,
    headersTimeout: TIMEOUTS.stampede,
    bodyTimeout: TIMEOUTS.stampede,
    connect: { timeout: 30_000 },
  });
  const admin = new Client({ connectionString: urls.admin, connectionTimeoutMillis: 5_000 });
  let api = null;
  try {
    await admin.connect();
    const port = await freePort();
    log(`[${mode}] starting ${path.relative(ROOT, MAIN)} on 127.0.0.1:${port} (LOCK_MODE=${mode})`);
    api = startApi({ mode, port, databaseUrl: urls.bench, redis, adminToken });
    const health = await waitHealthy(
      api,
      () => call(setupAgent, api.url, 'GET', '/health/ready', { timeoutMs: 2_000 }),
      TIMEOUTS.ready,
    );
    const redisHealth = health && health.info && health.info.redis ? health.info.redis : null;
    if (mode === 'redis' && redisHealth && redisHealth.status !== 'up') {
      log(`[${mode}] warning: readiness reports Redis ${JSON.stringify(redisHealth)}`);
    }

    const event = expectStatus(
      await call(setupAgent, api.url, 'POST', '/admin/events', {
        token: adminToken,
        timeoutMs: 30_000,
        body: {
          name: `Stampede ${mode} ${new Date().toISOString()}`,
          startsAt: '2027-01-01T20:00:00Z',
          venue: 'Bench Arena',
          currency: 'EUR',
          sections: [{ name: 'Floor', rows: 10, seatsPerRow: 100, priceCents: 5000 }],
        },
      }),
      201,
      'POST /admin/events',
    );
    log(`[${mode}] event ${event.id}; registering ${contenders} customers`);

    const runId = randomBytes(4).toString('hex');
    const customers = await withTimeout(
      mapLimit(
        Array.from({ length: contenders }, (_, i) => i),
        SETUP_CONCURRENCY,
        async (i) =>
          expectStatus(
            await call(setupAgent, api.url, 'POST', '/customers', {
              body: { email: `bench-${runId}-${i}@example.test`, name: `Bench Customer ${i}` },
            }),
            201,
            'POST /customers',
          ),
      ),
      Math.max(60_000, contenders * 50),
      'registering customers',
    );

    if (options.warm) {
      log(`[${mode}] warming the token and seat-map caches`);
      expectStatus(
        await call(setupAgent, api.url, 'GET', `/events/${event.id}/seats`),
        200,
        'GET /events/{id}/seats',
      );
      await withTimeout(
        mapLimit(customers, SETUP_CONCURRENCY, async (customer) =>
          expectStatus(
            await call(setupAgent, api.url, 'GET', '/bookings', { token: customer.token }),
            200,
            'GET /bookings',
          ),
        ),
        Math.max(60_000, contenders * 50),
        'warming up',
      );
    }
    const setupDone = Date.now();

    // Counters before: the seats row first (its own connection's transactions get published while
    // we wait), then the database counters once everything the set-up did has been published.
    const seatsBefore = await seatCounters(urls.bench, { vacuum: true });
    log(`[${mode}] waiting until PostgreSQL has published every counter (about 12 s)`);
    const before = await settle(admin, setupDone);
    const metricsBefore = parseMetrics(
      expectStatus(await call(setupAgent, api.url, 'GET', '/metrics'), 200, 'GET /metrics'),
    );

    if (options.warm) {
      // Open every connection now, so the stampede measures requests, not TCP handshakes and the
      // listen backlog. /health/live does not touch PostgreSQL.
      await withTimeout(
        Promise.all(
          Array.from({ length: contenders }, () =>
            call(stampedeAgent, api.url, 'GET', '/health/live', { timeoutMs: 30_000 }),
          ),
        ),
        60_000,
        'opening connections',
      );
    }
    const logBefore = logSnapshot(api);

    log(`[${mode}] stampede: ${contenders} x POST /bookings {seatIds:['${SEAT}']}`);
    const payload = JSON.stringify({ eventId: event.id, seatIds: [SEAT] });
    const wallStart = process.hrtime.bigint();
    const results = await withTimeout(
      Promise.all(
        customers.map(async (customer) => {
          const started = process.hrtime.bigint();
          try {
            const response = await request(`${api.url}/bookings`, {
              method: 'POST',
              headers: {
                authorization: `Bearer ${customer.token}`,
                'content-type': 'application/json',
              },
              body: payload,
              dispatcher: stampedeAgent,
            });
            const text = await response.body.text();
            const ms = Number(process.hrtime.bigint() - started) / 1e6;
            return { status: String(response.statusCode), ms, text };
          } catch (error) {
            const ms = Number(process.hrtime.bigint() - started) / 1e6;
            return { status: `error:${error.code || error.name}`, ms, text: error.message };
          }
        }),
      ),
      TIMEOUTS.stampede,
      'the stampede',
    );
    const wallMs = Number(process.hrtime.bigint() - wallStart) / 1e6;
    const stampedeDone = Date.now();

    const metricsAfter = parseMetrics(
      expectStatus(await call(setupAgent, api.url, 'GET', '/metrics'), 200, 'GET /metrics'),
    );

    log(`[${mode}] waiting until PostgreSQL has published every counter (about 12 s)`);
    const after = await settle(admin, stampedeDone);
    // Read after the wait: the API's log lines of the stampede have all arrived by now.
    const { levels: logLevelsDuring, messages: logMessagesDuring } = logSince(api, logBefore);

    // Verification: a backend publishes everything it still holds when it exits. (The pool's
    // sessions ending is expected; no other counter should move.)
    log(`[${mode}] stopping the API, then checking that the counters did not move`);
    await Promise.all([setupAgent.close(), stampedeAgent.close()]);
    const exit = await children.stop(api);
    const afterExit = await settle(admin, Date.now());
    const lateByExit = subtract(afterExit.counters, after.counters);
    const seatsAfter = await seatCounters(urls.bench);

    // Correctness, straight from the rows (our own reads, after the measurement).
    const truth = await withClient(urls.bench, async (client) => {
      const bookings = await client.query(
        `SELECT status, count(*)::int AS n FROM bookings WHERE event_id = $1 GROUP BY status`,
        [event.id],
      );
      const seat = await client.query(
        `SELECT status, booking_id, fence::text AS fence FROM seats
         WHERE event_id = $1 AND label = $2`,
        [event.id, SEAT],
      );
      return { bookings: bookings.rows, seat: seat.rows[0] };
    });

    return summarize({
      mode,
      contenders,
      results,
      wallMs,
      before,
      after,
      lateByExit,
      seatsBefore,
      seatsAfter,
      metricsBefore,
      metricsAfter,
      logLevelsDuring,
      logMessagesDuring,
      exit,
      truth,
      warm: options.warm,
    });
  } catch (error) {
    if (api && api.tail.length > 0) {
      log(`[${mode}] last API output:\n${api.tail.join('\n')}`);
    }
    throw error;
  } finally {
    // Drop our connections first: a graceful shutdown would otherwise wait for them.
    await Promise.all([setupAgent.destroy(), stampedeAgent.destroy()]).catch(() => undefined);
    if (api) await children.stop(api);
    await admin.end().catch(() => undefined);
  }
}

function summarize(run) {
  const statuses = {};
  for (const result of run.results) statuses[result.status] = (statuses[result.status] || 0) + 1;
  const winners = statuses['201'] || 0;
  const conflicts = statuses['409'] || 0;
  const other = Object.fromEntries(
    Object.entries(statuses).filter(([status]) => status !== '201' && status !== '409'),
  );
  const samples = {};
  for (const result of run.results) {
    if (result.status === '201' || result.status === '409') continue;
    samples[result.status] ??= result.text.slice(0, 300);
  }
  const latencies = run.results.map((result) => result.ms).sort((a, b) => a - b);
  const winner = run.results.find((result) => result.status === '201');
  const database = subtract(run.after.counters, run.before.counters);
  const seats = subtract(run.seatsAfter, run.seatsBefore);
  const holds = (outcome) =>
    metricDelta(run.metricsBefore, run.metricsAfter, `seatlock_holds_total{outcome="${outcome}"}`);
  const fallbacks = Object.keys(run.metricsAfter)
    .filter((name) => name.startsWith('seatlock_hold_fallbacks_total'))
    .reduce((sum, name) => sum + metricDelta(run.metricsBefore, run.metricsAfter, name), 0);
  const conflictRedis = holds('conflict_redis');
  return {
    mode: run.mode,
    contenders: run.contenders,
    winners,
    conflicts,
    otherStatuses: other,
    otherSamples: samples,
    latencyMs: {
      p50: round(percentile(latencies, 50)),
      p99: round(percentile(latencies, 99)),
      max: round(latencies[latencies.length - 1]),
      winner: winner ? round(winner.ms) : null,
    },
    wallMs: round(run.wallMs),
    postgres: {
      transactions: database.xact_commit + database.xact_rollback,
      commits: database.xact_commit,
      rollbacks: database.xact_rollback,
      // Every new session commits one start-up transaction (the app's pool reconnecting).
      newSessions: database.sessions,
      transactionsExclSessionStartups:
        database.xact_commit + database.xact_rollback - database.sessions,
      rowWrites: database.tup_inserted + database.tup_updated + database.tup_deleted,
      tupInserted: database.tup_inserted,
      tupUpdated: database.tup_updated,
      tupDeleted: database.tup_deleted,
      seatsUpdated: seats.n_tup_upd,
      statsSettled: run.before.settled && run.after.settled,
      statsWaitMs: { before: run.before.waitedMs, after: run.after.waitedMs },
      openSessionsAtSnapshots: { before: run.before.openSessions, after: run.after.openSessions },
      movedAfterExit: run.lateByExit,
    },
    holds: {
      held: holds('held'),
      conflictRedis,
      conflictDatabase: holds('conflict_database'),
      rejected: holds('rejected'),
      fallbacks,
    },
    answeredWithoutPostgres: conflictRedis / run.contenders,
    appLogLinesDuringStampede: run.logLevelsDuring,
    appLogMessagesDuringStampede: run.logMessagesDuring,
    appExit: run.exit,
    rows: run.truth,
    warm: run.warm,
  };
}

// ---------------------------------------------------------------------------------------------
// Report

function formatStatuses(map) {
  const entries = Object.entries(map);
  return entries.length === 0 ? '-' : entries.map(([status, n]) => `${status}: ${n}`).join(', ');
}

function printTable(report) {
  const [on, off] = [report.modes.redis, report.modes.off];
  const ms = (value) => (value === null ? '-' : `${value.toFixed(1)} ms`);
  const pct = (value) => `${(value * 100).toFixed(1)} %`;
  const rows = [
    ['LOCK_MODE', 'redis', 'off'],
    null,
    ['contenders', on.contenders, off.contenders],
    ['winners (201)', on.winners, off.winners],
    ['409 Conflict', on.conflicts, off.conflicts],
    ['other statuses', formatStatuses(on.otherStatuses), formatStatuses(off.otherStatuses)],
    ['latency p50', ms(on.latencyMs.p50), ms(off.latencyMs.p50)],
    ['latency p99', ms(on.latencyMs.p99), ms(off.latencyMs.p99)],
    ['latency max', ms(on.latencyMs.max), ms(off.latencyMs.max)],
    ['latency of the winner', ms(on.latencyMs.winner), ms(off.latencyMs.winner)],
    ['wall time', ms(on.wallMs), ms(off.wallMs)],
    null,
    ['PG transactions', on.postgres.transactions, off.postgres.transactions],
    ['  commits / rollbacks', pair(on, 'commits', 'rollbacks'), pair(off, 'commits', 'rollbacks')],
    ['  new sessions (1 commit each)', on.postgres.newSessions, off.postgres.newSessions],
    [
      '  excl. session start-ups',
      on.postgres.transactionsExclSessionStartups,
      off.postgres.transactionsExclSessionStartups,
    ],
    ['PG row writes', on.postgres.rowWrites, off.postgres.rowWrites],
    ['  ins / upd / del', triple(on), triple(off)],
    ['seats n_tup_upd', on.postgres.seatsUpdated, off.postgres.seatsUpdated],
    null,
    ['holds: held', on.holds.held, off.holds.held],
    ['holds: conflict_redis', on.holds.conflictRedis, off.holds.conflictRedis],
    ['holds: conflict_database', on.holds.conflictDatabase, off.holds.conflictDatabase],
    ['hold fallbacks (no Redis)', on.holds.fallbacks, off.holds.fallbacks],
    [
      'answered without PG (metric)',
      pct(on.answeredWithoutPostgres),
      pct(off.answeredWithoutPostgres),
    ],
    ['API log lines (warn+)', logLines(on), logLines(off)],
  ];
  const cells = rows.filter(Boolean).map((row) => row.map(String));
  const widths = [0, 1, 2].map((i) => Math.max(...cells.map((row) => row[i].length)));
  const line = (row) =>
    `${row[0].padEnd(widths[0])}  ${row[1].padStart(widths[1])}  ${row[2].padStart(widths[2])}`;
  const rule = '-'.repeat(widths[0] + widths[1] + widths[2] + 4);
  const out = ['', `Stampede: ${on.contenders} contenders, one seat (${SEAT})`, rule];
  for (const row of rows) out.push(row ? line(row.map(String)) : rule);
  out.push(rule);
  const times = (ratio) => (ratio === null ? 'n/a' : `${ratio}x`);
  out.push(
    `PostgreSQL transactions off/on: ${off.postgres.transactions} / ${on.postgres.transactions}` +
      ` = ${times(report.ratio.transactions)}`,
    `  excluding session start-ups: ${off.postgres.transactionsExclSessionStartups} / ` +
      `${on.postgres.transactionsExclSessionStartups} = ${times(report.ratio.transactionsExclSessionStartups)}`,
  );
  if (!report.warm) {
    out.push(
      '--cold: conflict_redis requests still read PostgreSQL before the lock (bearer token and ' +
        'seat map not cached yet); the transaction counts include those reads.',
    );
  }
  for (const mode of [on, off]) {
    const messages = Object.entries(mode.appLogMessagesDuringStampede);
    if (messages.length === 0) continue;
    out.push(`API log during the stampede (LOCK_MODE=${mode.mode}), most frequent first:`);
    for (const [message, n] of messages) out.push(`  ${String(n).padStart(5)}  ${message}`);
  }
  process.stdout.write(`${out.join('\n')}\n`);
}

function logLines(mode) {
  const levels = mode.appLogLinesDuringStampede;
  return levels.warn + levels.error + levels.fatal;
}

function pair(mode, a, b) {
  return `${mode.postgres[a]} / ${mode.postgres[b]}`;
}

function triple(mode) {
  const p = mode.postgres;
  return `${p.tupInserted} / ${p.tupUpdated} / ${p.tupDeleted}`;
}

function anomalies(mode) {
  const notes = [];
  if (mode.winners !== 1) notes.push(`${mode.winners} winners instead of exactly one`);
  if (Object.keys(mode.otherStatuses).length > 0) {
    notes.push(`statuses other than 201/409: ${JSON.stringify(mode.otherStatuses)}`);
    for (const [status, sample] of Object.entries(mode.otherSamples)) {
      notes.push(`  first ${status} body: ${sample}`);
    }
  }
  if (!mode.postgres.statsSettled) notes.push('PostgreSQL counters did not settle in time');
  const moved = Object.entries(mode.postgres.movedAfterExit).filter(
    ([name, n]) => n !== 0 && name !== 'sessions',
  );
  if (moved.length > 0) {
    notes.push(`counters moved after the API exited: ${JSON.stringify(Object.fromEntries(moved))}`);
  }
  const booked = mode.rows.bookings.reduce((sum, row) => sum + row.n, 0);
  if (booked !== mode.winners) {
    notes.push(`bookings rows for the event: ${booked}, winners answered: ${mode.winners}`);
  }
  if (mode.winners > 0 && (!mode.rows.seat || mode.rows.seat.status !== 'held')) {
    notes.push(`seat ${SEAT} row is ${JSON.stringify(mode.rows.seat)}`);
  }
  const errors = mode.appLogLinesDuringStampede.error + mode.appLogLinesDuringStampede.fatal;
  if (errors > 0) notes.push(`${errors} error log lines from the API during the stampede`);
  if (mode.mode === 'redis' && mode.holds.fallbacks > 0) {
    notes.push(
      `${mode.holds.fallbacks} holds fell back to PostgreSQL alone although Redis was up ` +
        '(seatlock_hold_fallbacks_total; see the API log lines above)',
    );
  }
  if (mode.appExit && mode.appExit.code !== 0 && mode.appExit.signal !== 'SIGTERM') {
    notes.push(`API exit after SIGTERM: ${JSON.stringify(mode.appExit)}`);
  }
  return notes;
}

// ---------------------------------------------------------------------------------------------

async function main() {
  const options = parseArgs(process.argv.slice(2));
  if (!existsSync(MAIN)) throw new BenchError(`${MAIN} is missing: run \`npm run build\` first`);
  const urls = databaseUrls();
  const redis = localRedisUrl();

  await requireRedis(redis);

  const modes = {};
  try {
    for (const mode of MODES) modes[mode] = await runMode(mode, options, urls, redis);
  } finally {
    await dropDatabase(urls.admin).catch((error) =>
      log(`could not drop ${BENCH_DATABASE}: ${error.message}`),
    );
  }

  const on = modes.redis.postgres.transactions;
  const off = modes.off.postgres.transactions;
  const onNet = modes.redis.postgres.transactionsExclSessionStartups;
  const offNet = modes.off.postgres.transactionsExclSessionStartups;
  const report = {
    benchmark: 'stampede',
    contenders: options.contenders,
    seat: SEAT,
    warm: options.warm,
    modes,
    ratio: {
      transactions: on > 0 ? round(off / on, 1) : null,
      transactionsExclSessionStartups: onNet > 0 ? round(offNet / onNet, 1) : null,
    },
    anomalies: Object.fromEntries(MODES.map((mode) => [mode, anomalies(modes[mode])])),
    ok: MODES.every((mode) => modes[mode].winners === 1),
  };
  printTable(report);
  for (const mode of MODES) {
    for (const note of report.anomalies[mode]) process.stdout.write(`! [${mode}] ${note}\n`);
  }
  if (options.json) process.stdout.write(`${JSON.stringify(report)}\n`);
  return report.ok ? 0 : 1;
}

runBenchmarkMain({ benchmark: 'stampede', main, children, log, totalMs: TIMEOUTS.total });
