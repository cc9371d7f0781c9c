'use strict';

/*
 * Chaos run: many customers book, pay, release and cancel over hot and cold seats on 3 API
 * instances behind a round-robin proxy, while faults are injected on a schedule; afterwards the
 * database, the gateway's ledger, the outbox and every answer are checked.
 *
 *   npm run chaos -- [--quick] [--duration S] [--customers N] [--json]
 *
 * All real processes on loopback, all of its own (see cluster.js): a private PostgreSQL cluster
 * (initdb into a temp dir, fsync off), 3 redis-server nodes without persistence with the API in
 * LOCK_MODE=redlock over them, the BUILT gateway simulator (its own database in that cluster), 3
 * BUILT API instances on one database, a Node round-robin proxy in front of them that retries
 * nothing, and a webhook receiver with one endpoint per customer (signatures checked).
 *
 * Faults (each recorded with its time from the start of the load): a Redis node SIGKILLed and
 * restarted empty; FLUSHALL on all three; an API instance SIGKILLed while payments are in flight
 * and restarted; PostgreSQL restarted (pg_ctl restart -m fast); an API instance SIGSTOPped for
 * longer than the hold TTL and SIGCONTed; the gateway SIGSTOPped for a few seconds and a window in
 * which half the payments use pm_card_slow. --quick runs every kind once in a shorter load.
 *
 * Checks (violations must be 0, else exit 1): no seat booked twice; every booking's seats
 * consistent with its status; check:ledger clean; every outbox message sent or dead and every
 * delivery delivered, dead or cancelled (none pending after the settle time); every delivery the
 * API marked delivered was received, correctly signed; no 500 except while PostgreSQL was down;
 * every confirmed/released/cancelled answer a customer got is what the rows say; no process exited
 * on its own.
 */

const { randomBytes, randomUUID } = require('node:crypto');
const { cpSync, existsSync, readdirSync, statSync, symlinkSync } = require('node:fs');
const path = require('node:path');
const { setTimeout: sleep } = require('node:timers/promises');
const { Agent, request } = require('undici');
const {
  BenchError,
  apiNodeOptions,
  freePort,
  mapLimit,
  withTimeout,
} = require('../bench/bench-support');
const {
  cleanup,
  cleanupSync,
  nodeChild,
  startPostgres,
  startProxy,
  startReceiver,
  startRedis,
  tempDir,
  waitHttp,
  waitPostgres,
  withPg,
} = require('./cluster');

const ROOT = path.resolve(__dirname, '..', '..');
/** The build's entry points, relative to dist/ (of the repository, or of the run's snapshot). */
const BUILT = {
  api: ['apps', 'api', 'apps', 'api', 'src', 'main.js'],
  gateway: ['apps', 'gateway-sim', 'apps', 'gateway-sim', 'src', 'main.js'],
  ledger: ['apps', 'api', 'apps', 'api', 'src', 'ledger', 'ledger-check.js'],
  signature: ['apps', 'api', 'apps', 'api', 'src', 'common', 'http', 'webhook-signature.js'],
};

const API_DATABASE = 'seatlock_chaos';
const GATEWAY_DATABASE = 'seatlock_chaos_gateway';
const INSTANCES = 3;
const REDIS_NODES = 3;
const HOLD_TTL_SECONDS = 5;
const HOT_SEATS = 4;
const COLD_ROWS = 40; // x 100 seats
/** A 500 that overlaps [restart begun, accepting again + this] counts as "while PostgreSQL was down". */
const PG_GRACE_MS = 2_000;
const REQUEST_TIMEOUT_MS = 20_000;
const PROXY_TIMEOUT_MS = 30_000;
const GATEWAY_SLOW_MS = 4_000;
const RECEIVER_FAIL_SHARE = 0.05;

const USAGE = `Usage: npm run chaos -- [--quick] [--duration S] [--customers N] [--settle S] [--json]

  --quick        a short run for CI: ${45} s of load, every fault kind once (about 90 s in all)
  --duration S   seconds of load (default 120; 45 with --quick)
  --customers N  virtual customers (default 50)
  --settle S     at most this long for the system to settle before the checks (default 60; 40 quick)
  --json         also print one JSON object as the last line of stdout`;

function log(message) {
  process.stderr.write(`[chaos ${new Date().toISOString().slice(11, 23)}] ${message}\n`);
}

function parseArgs(argv) {
  const options = { quick: false, duration: null, customers: 50, settle: null, json: false };
  const number = (name, raw, min, max) => {
    const n = Number(raw);
    if (!/^\d+$/.test(raw ?? '') || n < min || n > max) {
      throw new BenchError(`${name} needs an integer from ${min} to ${max}, got ${raw}`);
    }
    return n;
  };
  for (let i = 0; i < argv.length; i += 1) {
    const eq = argv[i].startsWith('--') ? argv[i].indexOf('=') : -1;
    const name = eq === -1 ? argv[i] : argv[i].slice(0, eq);
    const take = () => (eq === -1 ? argv[(i += 1)] : argv[i].slice(eq + 1));
    if (name === '--quick') options.quick = true;
    else if (name === '--json') options.json = true;
    else if (name === '--duration') options.duration = number(name, take(), 10, 3600);
    else if (name === '--customers') options.customers = number(name, take(), 1, 500);
    else if (name === '--settle') options.settle = number(name, take(), 5, 600);
    else if (name === '--help' || name === '-h') {
      process.stdout.write(`${USAGE}\n`);
      process.exit(0);
    } else throw new BenchError(`unknown argument ${argv[i]}\n${USAGE}`);
  }
  options.duration ??= options.quick ? 45 : 120;
  options.settle ??= options.quick ? 40 : 60;
  return options;
}

const pick = (list) => list[Math.floor(Math.random() * list.length)];
const seconds = (ms) => Math.round(ms / 100) / 10;

// ---------------------------------------------------------------------------------------------
// The fault schedules, in seconds from the start of the load

function schedule(options) {
  const d = options.duration;
  if (options.quick) {
    // Every kind once; the order keeps each fault's effect apart from the next.
    return [
      { at: 4, kind: 'redis-kill', node: 0, downMs: 3_000 },
      { at: 9, kind: 'flushall' },
      { at: 13, kind: 'api-sigkill', instance: 2 },
      { at: 21, kind: 'pg-restart' },
      { at: 27, kind: 'api-sigstop', instance: 1, ms: (HOLD_TTL_SECONDS + 3) * 1000 },
      { at: 33, kind: 'gateway-slow', ms: 6_000, sigstopMs: 3_000 },
    ].filter((fault) => fault.at < d - 5);
  }
  const at = (fraction) => Math.round(d * fraction);
  return [
    { at: at(0.06), kind: 'redis-kill', node: 0, downMs: 5_000 },
    { at: at(0.16), kind: 'flushall' },
    { at: at(0.25), kind: 'gateway-slow', ms: 15_000, sigstopMs: 4_000 },
    { at: at(0.4), kind: 'api-sigstop', instance: 1, ms: (HOLD_TTL_SECONDS + 4) * 1000 },
    { at: at(0.52), kind: 'api-sigkill', instance: 2 },
    { at: at(0.62), kind: 'pg-restart' },
    { at: at(0.72), kind: 'redis-kill', node: 2, downMs: 4_000 },
    { at: at(0.8), kind: 'flushall' },
    { at: at(0.86), kind: 'api-sigkill', instance: 0 },
  ];
}

// ---------------------------------------------------------------------------------------------
// HTTP through the proxy, every request recorded with its status and time

function recorder(t0) {
  const rec = {
    byStatus: {},
    byKind: {},
    inFlight: {},
    fiveHundreds: [],
    total: 0,
    note(kind, status, startedAt, endedAt, backend, text) {
      rec.total += 1;
      rec.byStatus[status] = (rec.byStatus[status] || 0) + 1;
      rec.byKind[kind] ??= {};
      rec.byKind[kind][status] = (rec.byKind[kind][status] || 0) + 1;
      if (status === 500) {
        rec.fiveHundreds.push({
          kind,
          from: (startedAt - t0()) / 1000,
          to: (endedAt - t0()) / 1000,
          backend,
          body: String(text).slice(0, 200),
        });
      }
    },
  };
  return rec;
}

function makeClient(baseUrl, rec, agent) {
  return async function call(kind, method, route, { token, body, idempotencyKey } = {}) {
    const headers = {};
    if (token) headers.authorization = `Bearer ${token}`;
    if (idempotencyKey) headers['idempotency-key'] = idempotencyKey;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const startedAt = Date.now();
    rec.inFlight[kind] = (rec.inFlight[kind] || 0) + 1;
    let status;
    let text = '';
    let json;
    let backend;
    try {
      const response = await request(`${baseUrl}${route}`, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        dispatcher: agent,
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
      text = await response.body.text();
      status = response.statusCode;
      backend = response.headers['x-chaos-backend'];
      try {
        json = text ? JSON.parse(text) : null;
      } catch {
        json = null;
      }
      return { status, body: json, text, headers: response.headers };
    } catch (error) {
      status =
        error.name === 'TimeoutError' || error.name === 'AbortError'
          ? 'timeout'
          : `error:${error.code || error.name}`;
      text = error.message;
      return { status, body: null, text, headers: {} };
    } finally {
      rec.inFlight[kind] -= 1;
      if (kind !== 'setup') rec.note(kind, status, startedAt, Date.now(), backend, text);
    }
  };
}

function expect201(response, what) {
  if (response.status !== 201 && response.status !== 200) {
    throw new BenchError(`${what}: ${response.status} ${response.text.slice(0, 300)}`);
  }
  return response.body;
}

// ---------------------------------------------------------------------------------------------
// The load

/** What the customers were told, per booking: checked against the rows afterwards. */
function answerBook() {
  const bookings = new Map();
  return {
    bookings,
    told(id, status) {
      const entry = bookings.get(id) ?? { status: null, uncertain: false };
      entry.status = status;
      entry.uncertain = false;
      bookings.set(id, entry);
    },
    /** A later request on it whose outcome is unknown (timeout, 5xx, proxy error). */
    unknown(id) {
      const entry = bookings.get(id);
      if (entry) entry.uncertain = true;
    },
  };
}

const definite = (status) => typeof status === 'number' && status < 500;

function paymentMethod(state) {
  const r = Math.random();
  if (r < state.slowShare) return 'pm_card_slow';
  const rest = Math.random();
  if (rest < 0.7) return 'pm_card_visa';
  if (rest < 0.8) return 'pm_card_declined';
  if (rest < 0.84) return 'pm_card_insufficient_funds';
  if (rest < 0.92) return 'pm_card_async';
  if (rest < 0.96) return 'pm_card_slow';
  return 'pm_card_flaky';
}

async function customerLoop(customer, world, state) {
  const { call, events, book } = world;
  const token = customer.token;
  const stats = state.actions;
  while (!state.stop) {
    const hot = Math.random() < 0.35;
    const event = hot ? events.hot : events.cold;
    const seatIds = hot
      ? [pick(event.labels)]
      : Math.random() < 0.8
        ? [pick(event.labels)]
        : [...new Set([pick(event.labels), pick(event.labels)])];
    const hold = await call('hold', 'POST', '/bookings', {
      token,
      body: { eventId: event.id, seatIds },
    });
    if (hold.status !== 201 || !hold.body?.id) {
      await sleep(hold.status === 409 ? 50 + Math.random() * 150 : 300);
      continue;
    }
    const id = hold.body.id;
    book.told(id, 'held');
    stats.holds += 1;
    const r = Math.random();
    if (r < 0.08) {
      stats.released += 1;
      await release(world, token, id);
    } else if (r < 0.14) {
      stats.abandoned += 1; // left to expire
    } else {
      if (r < 0.2) {
        stats.paidLate += 1;
        await sleep((HOLD_TTL_SECONDS + 1.5) * 1000); // the hold lapses: void, not booked
        if (state.stop) break;
      }
      const paid = await pay(world, state, token, id);
      if (paid === 'declined' && Math.random() < 0.5) await pay(world, state, token, id, true);
      if (paid === 'confirmed' && Math.random() < (hot ? 0.6 : 0.2)) {
        await sleep(Math.random() * 500);
        stats.cancelled += 1;
        await release(world, token, id);
      }
    }
    await sleep(50 + Math.random() * 200);
  }
}

async function release({ call, book }, token, id) {
  const answer = await call('delete', 'DELETE', `/bookings/${id}`, { token });
  if (answer.status === 200 && answer.body?.status) book.told(id, answer.body.status);
  else if (!definite(answer.status)) book.unknown(id);
}

/** One payment, retried once with the same Idempotency-Key when its outcome is unknown. */
async function pay(world, state, token, id, visa = false) {
  const { call, book } = world;
  const key = randomUUID();
  const body = { paymentMethod: visa ? 'pm_card_visa' : paymentMethod(state) };
  state.methods[body.paymentMethod] = (state.methods[body.paymentMethod] || 0) + 1;
  let answer = await call('pay', 'POST', `/bookings/${id}/payments`, {
    token,
    body,
    idempotencyKey: key,
  });
  if (!definite(answer.status) || (answer.status === 409 && answer.headers['retry-after'])) {
    // Unknown outcome, or the first attempt is still in flight (409 + Retry-After): ask again
    // with the same key, as a client should.
    await sleep(answer.status === 409 ? 1_000 : 500);
    state.actions.payRetries += 1;
    answer = await call('pay-retry', 'POST', `/bookings/${id}/payments`, {
      token,
      body,
      idempotencyKey: key,
    });
  }
  if (answer.status === 201 && answer.body?.booking?.status) {
    book.told(id, answer.body.booking.status);
    return answer.body.booking.status;
  }
  if (answer.status === 402) return 'declined';
  if (!definite(answer.status)) book.unknown(id);
  return 'other';
}

// ---------------------------------------------------------------------------------------------
// Faults

async function runFault(fault, world, state) {
  const { pg, redis, apis, gateway } = world;
  const since = () => (Date.now() - state.t0) / 1000;
  const entry = { kind: fault.kind, at: since(), until: null, detail: '' };
  state.faults.push(entry);
  log(`fault at ${entry.at.toFixed(1)} s: ${fault.kind}`);
  switch (fault.kind) {
    case 'redis-kill': {
      const node = redis[fault.node];
      await node.kill();
      await sleep(fault.downMs);
      await node.start();
      entry.detail = `node ${fault.node} (:${node.port}) SIGKILL, restarted empty after ${fault.downMs / 1000} s`;
      break;
    }
    case 'flushall': {
      const answers = await Promise.all(
        redis.map((node) => node.flushAll().catch((e) => e.message)),
      );
      entry.detail = `FLUSHALL on ${redis.length} nodes: ${answers.join(', ')}`;
      break;
    }
    case 'api-sigkill': {
      const api = apis[fault.instance];
      const deadline = Date.now() + 5_000;
      while (!(state.rec.inFlight.pay > 0) && Date.now() < deadline) await sleep(10);
      const inFlight = state.rec.inFlight.pay || 0;
      await api.kill();
      const down = since();
      api.start();
      await waitHttp(api, `${api.url}/health/ready`, 60_000);
      entry.detail =
        `instance ${fault.instance} SIGKILL with ${inFlight} payments in flight at the proxy, ` +
        `restarted, ready after ${(since() - down).toFixed(1)} s`;
      break;
    }
    case 'pg-restart': {
      const window = { from: Date.now(), to: null };
      state.pgWindows.push(window);
      await pg.restart();
      await waitPostgres(pg.url('postgres'), 30_000);
      window.to = Date.now();
      entry.detail = `pg_ctl restart -m fast; accepting again after ${seconds(window.to - window.from)} s`;
      break;
    }
    case 'api-sigstop': {
      const api = apis[fault.instance];
      api.signal('SIGSTOP');
      await sleep(fault.ms);
      api.signal('SIGCONT');
      entry.detail = `instance ${fault.instance} SIGSTOP for ${fault.ms / 1000} s (hold TTL ${HOLD_TTL_SECONDS} s), SIGCONT`;
      break;
    }
    case 'gateway-slow': {
      state.slowShare = 0.5;
      gateway.signal('SIGSTOP');
      await sleep(fault.sigstopMs);
      gateway.signal('SIGCONT');
      await sleep(Math.max(0, fault.ms - fault.sigstopMs));
      state.slowShare = 0;
      entry.detail =
        `gateway SIGSTOP for ${fault.sigstopMs / 1000} s, and for ${fault.ms / 1000} s half the ` +
        `payments use pm_card_slow (${GATEWAY_SLOW_MS / 1000} s each)`;
      break;
    }
    default:
      throw new BenchError(`unknown fault ${fault.kind}`);
  }
  entry.until = since();
}

async function runFaults(faults, world, state) {
  for (const fault of faults) {
    const wait = state.t0 + fault.at * 1000 - Date.now();
    if (wait > 0) await sleep(wait);
    if (state.stop) break;
    await withTimeout(runFault(fault, world, state), 90_000, `fault ${fault.kind}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Settling and checking

async function pendingWork(apiDb, gatewayDb) {
  const { rows } = await apiDb.query(
    `SELECT (SELECT count(*) FROM outbox_messages WHERE status = 'pending')::int AS outbox,
            (SELECT count(*) FROM notification_deliveries WHERE status = 'pending')::int AS deliveries,
            (SELECT count(*) FROM bookings WHERE status = 'held')::int AS held,
            (SELECT count(*) FROM payments WHERE next_action IS NOT NULL)::int AS payments`,
  );
  const gw = await gatewayDb.query(
    `SELECT count(*)::int AS n FROM gateway_sim.webhook_deliveries
     WHERE delivered_at IS NULL AND failed_at IS NULL`,
  );
  return { ...rows[0], gatewayWebhooks: gw.rows[0].n };
}

async function settle(world, options) {
  const started = Date.now();
  let last;
  for (;;) {
    try {
      last = await pendingWork(world.apiDb, world.gatewayDb);
    } catch (error) {
      last = { error: error.message };
    }
    const idle =
      last &&
      !last.error &&
      last.outbox === 0 &&
      last.deliveries === 0 &&
      last.held === 0 &&
      last.payments === 0 &&
      last.gatewayWebhooks === 0;
    if (idle || Date.now() - started > options.settle * 1000) {
      return { settled: Boolean(idle), waitedSeconds: seconds(Date.now() - started), left: last };
    }
    await sleep(500);
  }
}

async function sqlChecks(apiDb) {
  const violations = [];
  const add = (name, rows, describe) => {
    for (const row of rows.slice(0, 10)) violations.push(`${name}: ${describe(row)}`);
    if (rows.length > 10) violations.push(`${name}: ... ${rows.length - 10} more`);
  };
  const q = async (sql) => (await apiDb.query(sql)).rows;

  add(
    'seat booked twice',
    await q(`SELECT b.event_id, l.label, count(*)::int AS n, array_agg(b.id::text) AS ids
             FROM bookings b CROSS JOIN unnest(b.seat_labels) AS l(label)
             WHERE b.status = 'confirmed' GROUP BY 1, 2 HAVING count(*) > 1`),
    (r) => `${r.label} of event ${r.event_id} in ${r.n} confirmed bookings ${r.ids.join(', ')}`,
  );
  add(
    'seat owned by no booking of it',
    await q(`SELECT s.event_id, s.label, s.status, s.booking_id FROM seats s
             LEFT JOIN bookings b ON b.id = s.booking_id
             WHERE s.status <> 'free'
               AND (b.id IS NULL OR b.event_id <> s.event_id OR NOT s.label = ANY (b.seat_labels))`),
    (r) => `${r.label} is ${r.status} for booking ${r.booking_id}, which does not hold it`,
  );
  add(
    'booked seat of an unconfirmed booking',
    await q(`SELECT s.label, b.id, b.status FROM seats s JOIN bookings b ON b.id = s.booking_id
             WHERE s.status = 'booked' AND b.status <> 'confirmed'`),
    (r) => `${r.label} booked for booking ${r.id}, which is ${r.status}`,
  );
  add(
    'confirmed booking without its seats',
    await q(`SELECT b.id, l.label, s.status, s.booking_id FROM bookings b
             CROSS JOIN unnest(b.seat_labels) AS l(label)
             LEFT JOIN seats s ON s.event_id = b.event_id AND s.label = l.label
             WHERE b.status = 'confirmed'
               AND (s.status IS DISTINCT FROM 'booked' OR s.booking_id IS DISTINCT FROM b.id)`),
    (r) => `booking ${r.id}: ${r.label} is ${r.status} for ${r.booking_id}`,
  );
  add(
    'live hold without its seats under its fence',
    await q(`SELECT b.id, l.label, s.status, s.booking_id, s.fence, b.fence AS booking_fence
             FROM bookings b CROSS JOIN unnest(b.seat_labels) AS l(label)
             LEFT JOIN seats s ON s.event_id = b.event_id AND s.label = l.label
             WHERE b.status = 'held' AND b.expires_at > now()
               AND (s.status IS DISTINCT FROM 'held' OR s.booking_id IS DISTINCT FROM b.id
                    OR s.fence IS DISTINCT FROM b.fence)`),
    (r) =>
      `booking ${r.id}: ${r.label} is ${r.status} for ${r.booking_id} fence ${r.fence} ` +
      `(booking fence ${r.booking_fence})`,
  );
  add(
    'ended booking still owns seats',
    await q(`SELECT b.id, b.status, s.label, s.status AS seat_status FROM seats s
             JOIN bookings b ON b.id = s.booking_id
             WHERE b.status IN ('released', 'expired', 'cancelled')`),
    (r) => `booking ${r.id} is ${r.status} but ${r.label} is ${r.seat_status} for it`,
  );
  const counts = async (table) =>
    Object.fromEntries(
      (await q(`SELECT status, count(*)::int AS n FROM ${table} GROUP BY 1 ORDER BY 1`)).map(
        (r) => [r.status, r.n],
      ),
    );
  const heldPastTtl = (
    await q(`SELECT count(*)::int AS n FROM bookings WHERE status = 'held' AND expires_at <= now()`)
  )[0].n;
  return {
    violations,
    bookings: await counts('bookings'),
    payments: await counts('payments'),
    outbox: await counts('outbox_messages'),
    deliveries: await counts('notification_deliveries'),
    heldPastTtl,
  };
}

async function answersAgainstRows(apiDb, book) {
  const told = [...book.bookings].filter(
    ([, e]) => !e.uncertain && ['confirmed', 'released', 'cancelled'].includes(e.status),
  );
  if (told.length === 0) return { checked: 0, violations: [] };
  const { rows } = await apiDb.query(
    `SELECT id::text, status FROM bookings WHERE id = ANY ($1::uuid[])`,
    [told.map(([id]) => id)],
  );
  const actual = new Map(rows.map((r) => [r.id, r.status]));
  const violations = [];
  for (const [id, entry] of told) {
    if (actual.get(id) !== entry.status) {
      violations.push(
        `answers vs rows: booking ${id} was answered ${entry.status}, the row says ${actual.get(id)}`,
      );
    }
  }
  return { checked: told.length, violations: violations.slice(0, 20) };
}

async function deliveriesAgainstReceiver(apiDb, receiver, endpointIndex) {
  const { rows } = await apiDb.query(
    `SELECT message_id::text, endpoint_id::text FROM notification_deliveries
     WHERE channel = 'webhook' AND status = 'delivered'`,
  );
  const missing = rows.filter(
    (r) => !receiver.stats.keys.has(`${endpointIndex.get(r.endpoint_id)}/${r.message_id}`),
  );
  return {
    delivered: rows.length,
    violations: missing
      .slice(0, 10)
      .map((r) => `delivery of ${r.message_id} marked delivered, never received by its endpoint`),
  };
}

function overlapsPgWindow(item, windows, t0) {
  return windows.some((w) => {
    const from = (w.from - t0) / 1000;
    const to = ((w.to ?? Date.now()) + PG_GRACE_MS - t0) / 1000;
    return item.from <= to && item.to >= from;
  });
}

// ---------------------------------------------------------------------------------------------
// The report

function printReport(report) {
  const lines = [];
  const rule = '-'.repeat(100);
  const row = (name, value) => lines.push(`  ${name.padEnd(34)} ${value}`);
  const statuses = (map) =>
    Object.entries(map)
      .sort((a, b) => String(a[0]).localeCompare(String(b[0])))
      .map(([k, n]) => `${k}: ${n}`)
      .join(', ') || '-';
  lines.push(
    '',
    `Chaos run (${report.mode}): ${report.customers} customers, ${report.durationSeconds} s of load, ` +
      `${INSTANCES} API instances, LOCK_MODE=redlock over ${REDIS_NODES} Redis nodes, hold TTL ${HOLD_TTL_SECONDS} s`,
  );
  lines.push(rule, '  Faults injected (seconds from the start of the load)');
  for (const f of report.faults) {
    lines.push(
      `  ${`${f.at.toFixed(1)}-${(f.until ?? f.at).toFixed(1)} s`.padEnd(14)} ${f.kind.padEnd(13)} ${f.detail}`,
    );
  }
  lines.push(rule, '  Requests by status');
  row('all', `${report.requests.total} requests: ${statuses(report.requests.byStatus)}`);
  for (const [kind, map] of Object.entries(report.requests.byKind)) row(`  ${kind}`, statuses(map));
  row('500 while PostgreSQL was down', String(report.requests.excused500));
  row('500 at any other time', String(report.requests.unexcused500));
  lines.push(rule);
  row('bookings by status', statuses(report.bookings));
  row('payments by status', statuses(report.payments));
  row('payment methods asked', statuses(report.methods));
  row('customer actions', statuses(report.actions));
  row('outbox messages by status', statuses(report.outbox));
  row('deliveries by status', statuses(report.deliveries));
  const w = report.webhooks;
  row(
    'webhooks received',
    `${w.received} accepted (${w.distinct} distinct, ${w.duplicates} duplicates), ` +
      `${w.answered503} answered 503 on purpose, ${w.badSignatures} bad signatures`,
  );
  row('webhook types', statuses(w.byType));
  row('answers checked against rows', String(report.answersChecked));
  row(
    'settled',
    `${report.settle.settled ? 'yes' : 'NO'} after ${report.settle.waitedSeconds} s` +
      (report.settle.settled ? '' : ` (left: ${JSON.stringify(report.settle.left)})`),
  );
  row('held bookings past TTL at the end', String(report.heldPastTtl));
  row(
    'check:ledger',
    `${report.ledger.violations.length} violations (${report.ledger.intents} intents, ` +
      `${report.ledger.confirmedBookings} confirmed bookings, ${report.ledger.attempts} reads)`,
  );
  row('API error-level log lines', statuses(report.errorLogs));
  if (report.anomalies.length > 0) {
    lines.push(
      rule,
      `  Anomalies of the test rig (not counted as violations): ${report.anomalies.length}`,
    );
    for (const a of report.anomalies) lines.push(`  ~ ${a}`);
  }
  lines.push(rule, `  Violations: ${report.violations.length}`);
  for (const v of report.violations.slice(0, 40)) lines.push(`  ! ${v}`);
  lines.push(rule, `  wall time ${report.wallSeconds} s`);
  lines.push(
    report.ok
      ? 'chaos: PASS (0 violations)'
      : `chaos: FAIL (${report.violations.length} violations)`,
  );
  process.stdout.write(`${lines.join('\n')}\n`);
}

// ---------------------------------------------------------------------------------------------
// The run

/** Every file under `dir` with its size and mtime: to see whether a build ran meanwhile. */
function fingerprint(dir) {
  return readdirSync(dir, { recursive: true })
    .sort()
    .map((name) => {
      const stat = statSync(path.join(dir, name));
      return `${name}:${stat.size}:${stat.mtimeMs}`;
    })
    .join('\n');
}

/**
 * A private copy of dist/ for this run (node_modules linked beside it), so that someone running
 * `npm run build` on this machine meanwhile cannot empty it under our API restarts. Waits for a
 * build in progress, and copies again if dist/ changed while it was being copied.
 */
async function snapshotBuild() {
  const source = path.join(ROOT, 'dist');
  const missing = () =>
    Object.values(BUILT).find((parts) => !existsSync(path.join(source, ...parts)));
  const deadline = Date.now() + 180_000;
  for (let attempt = 1; ; attempt += 1) {
    while (missing()) {
      if (Date.now() > deadline) {
        throw new BenchError(
          `${path.join(source, ...missing())} is missing: run \`npm run build\` first`,
        );
      }
      await sleep(1_000);
    }
    const dir = tempDir('seatlock-chaos-build-');
    try {
      const before = fingerprint(source);
      cpSync(source, path.join(dir, 'dist'), { recursive: true });
      await sleep(500);
      if (before === fingerprint(source) && !missing()) {
        symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
        const at = (parts) => path.join(dir, 'dist', ...parts);
        return {
          dir,
          api: at(BUILT.api),
          gateway: at(BUILT.gateway),
          ledger: at(BUILT.ledger),
          signature: at(BUILT.signature),
        };
      }
    } catch (error) {
      if (attempt >= 10) throw error;
    }
    if (attempt >= 10) throw new BenchError('dist/ kept changing (someone is building)');
    log('dist/ changed while it was copied (a build running?); copying again');
    await sleep(2_000);
  }
}

async function run(options) {
  const wallStart = Date.now();
  const build = await snapshotBuild();
  const { checkLedger } = require(build.ledger);
  const { webhookSignatureProblem } = require(build.signature);
  const state = {
    t0: Date.now(),
    stop: false,
    slowShare: 0,
    faults: [],
    pgWindows: [],
    methods: {},
    actions: { holds: 0, released: 0, abandoned: 0, paidLate: 0, cancelled: 0, payRetries: 0 },
  };
  state.rec = recorder(() => state.t0);
  const t0 = () => state.t0;

  log('private PostgreSQL cluster (initdb)');
  const pg = await startPostgres();
  await withPg(pg.url('postgres'), async (client) => {
    await client.query(`CREATE DATABASE ${API_DATABASE}`);
    await client.query(`CREATE DATABASE ${GATEWAY_DATABASE}`);
  });
  log(`PostgreSQL on ${pg.port}; ${REDIS_NODES} redis-server nodes`);
  const redisDir = tempDir('seatlock-chaos-redis-');
  const redis = [];
  for (let i = 0; i < REDIS_NODES; i += 1) redis.push(await startRedis(redisDir));

  const ports = [];
  for (let i = 0; i < INSTANCES; i += 1) ports.push(await freePort());
  const proxy = await startProxy(
    ports.map((port) => ({ port })),
    { timeoutMs: PROXY_TIMEOUT_MS },
  );
  const receiver = await startReceiver(webhookSignatureProblem, { failShare: RECEIVER_FAIL_SHARE });
  const adminToken = `chaos-admin-${randomBytes(16).toString('hex')}`;
  const webhookSecret = `whsec_chaos_${randomBytes(16).toString('hex')}`;

  const gatewayPort = await freePort();
  const gatewayUrl = `http://127.0.0.1:${gatewayPort}`;
  const gateway = nodeChild(
    'gateway simulator',
    build.gateway,
    {
      GATEWAY_PORT: String(gatewayPort),
      GATEWAY_HOST: '127.0.0.1',
      GATEWAY_DATABASE_URL: pg.url(GATEWAY_DATABASE),
      GATEWAY_WEBHOOK_URL: `${proxy.url}/payments/webhook`,
      GATEWAY_WEBHOOK_SECRET: webhookSecret,
      GATEWAY_LOG_LEVEL: 'warn',
      GATEWAY_SLOW_MS: String(GATEWAY_SLOW_MS),
      GATEWAY_ASYNC_DELAY_MS: '1500',
      GATEWAY_WEBHOOK_RETRY_BASE_MS: '250',
    },
    t0,
    build.dir,
  );
  gateway.start();
  await waitHttp(gateway, `${gatewayUrl}/health`, 60_000);

  const apiEnv = (port, migrate) => ({
    PORT: String(port),
    HOST: '127.0.0.1',
    DATABASE_URL: pg.url(API_DATABASE),
    LOCK_MODE: 'redlock',
    REDIS_URLS: redis.map((node) => node.url).join(','),
    REDIS_URL: redis[0].url,
    ADMIN_TOKEN: adminToken,
    GATEWAY_URL: gatewayUrl,
    GATEWAY_WEBHOOK_SECRET: webhookSecret,
    RATE_LIMIT_PER_MINUTE: '0',
    LOG_LEVEL: 'warn',
    MIGRATIONS_RUN: migrate ? 'true' : 'false',
    HOLD_TTL_SECONDS: String(HOLD_TTL_SECONDS),
    SWEEP_INTERVAL_MS: '500',
    RECONCILE_INTERVAL_MS: '1000',
    NOTIFY_POLL_MS: '500',
    NOTIFY_RETRY_BASE_MS: '250',
    NOTIFY_MAX_ATTEMPTS: '8',
    WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'true',
    DB_POOL_SIZE: '10',
  });
  const apis = [];
  for (let i = 0; i < INSTANCES; i += 1) {
    // With `npm start`'s heap cap: the faults must not push an instance out of memory.
    const api = nodeChild(
      `API ${i}`,
      build.api,
      apiEnv(ports[i], i === 0),
      t0,
      build.dir,
      apiNodeOptions(),
    );
    api.url = `http://127.0.0.1:${ports[i]}`;
    apis.push(api);
  }
  log(`API 0 (migrations) on ${ports[0]}`);
  apis[0].start();
  await waitHttp(apis[0], `${apis[0].url}/health/ready`, 90_000);
  // Later starts (restarts included) skip the migrations: they are done.
  apis[0].env = apiEnv(ports[0], false);
  log(`API 1, 2 on ${ports[1]}, ${ports[2]}; proxy ${proxy.url}`);
  for (const api of apis.slice(1)) api.start();
  await Promise.all(apis.slice(1).map((api) => waitHttp(api, `${api.url}/health/ready`, 90_000)));

  const agent = new Agent({ connections: options.customers * 2 + 16, keepAliveTimeout: 10_000 });
  const call = makeClient(proxy.url, state.rec, agent);
  const admin = { token: adminToken };
  const hot = expect201(
    await call('setup', 'POST', '/admin/events', {
      ...admin,
      body: {
        name: 'Chaos hot seats',
        startsAt: '2027-06-01T19:30:00Z',
        venue: 'Chaos Hall',
        currency: 'EUR',
        sections: [{ name: 'Front', rows: 1, seatsPerRow: HOT_SEATS, priceCents: 9_000 }],
      },
    }),
    'POST /admin/events (hot)',
  );
  const cold = expect201(
    await call('setup', 'POST', '/admin/events', {
      ...admin,
      body: {
        name: 'Chaos cold seats',
        startsAt: '2027-06-02T19:30:00Z',
        venue: 'Chaos Arena',
        currency: 'EUR',
        sections: [{ name: 'Floor', rows: COLD_ROWS, seatsPerRow: 100, priceCents: 3_000 }],
      },
    }),
    'POST /admin/events (cold)',
  );
  const events = {
    hot: { id: hot.id, labels: hot.seats.map((s) => s.label) },
    cold: { id: cold.id, labels: cold.seats.map((s) => s.label) },
  };
  log(`${options.customers} customers, each with a webhook endpoint`);
  const runId = randomBytes(4).toString('hex');
  const endpointIndex = new Map();
  const customers = await mapLimit(
    Array.from({ length: options.customers }, (_, i) => i),
    8,
    async (i) => {
      const customer = expect201(
        await call('setup', 'POST', '/customers', {
          body: { email: `chaos-${runId}-${i}@example.test`, name: `Chaos ${i}` },
        }),
        'POST /customers',
      );
      const endpoint = expect201(
        await call('setup', 'POST', '/webhook-endpoints', {
          token: customer.token,
          body: { url: receiver.url(i) },
        }),
        'POST /webhook-endpoints',
      );
      receiver.setSecret(i, endpoint.secret);
      endpointIndex.set(endpoint.id, i);
      return customer;
    },
  );

  const apiDb = new (require('pg').Client)({ connectionString: pg.url(API_DATABASE) });
  const gatewayDb = new (require('pg').Client)({ connectionString: pg.url(GATEWAY_DATABASE) });
  const world = { pg, redis, apis, gateway, proxy, receiver, call, events, book: answerBook() };

  // -------------------------------------------------------------------------------------------
  const faults = schedule(options);
  log(`load: ${options.customers} customers for ${options.duration} s; ${faults.length} faults`);
  state.t0 = Date.now();
  const stopTimer = setTimeout(() => {
    state.stop = true;
  }, options.duration * 1000);
  const faultRun = runFaults(faults, world, state).catch((error) => {
    state.faultError = error.message;
    log(`fault schedule failed: ${error.message}`);
  });
  await withTimeout(
    Promise.all(customers.map((customer) => customerLoop(customer, world, state))),
    options.duration * 1000 + REQUEST_TIMEOUT_MS * 3 + 30_000,
    'the load',
  );
  clearTimeout(stopTimer);
  state.stop = true;
  await faultRun;
  const loadSeconds = seconds(Date.now() - state.t0);
  log(`load done after ${loadSeconds} s: ${state.rec.total} requests`);

  // Every process must be running again (a fault that failed half-way leaves it stopped).
  for (const proc of [...apis, gateway]) proc.signal('SIGCONT');

  apiDb.on('error', () => undefined);
  gatewayDb.on('error', () => undefined);
  await apiDb.connect();
  await gatewayDb.connect();
  log(`settling (at most ${options.settle} s)`);
  const settled = await settle({ apiDb, gatewayDb }, options);
  log(`settled: ${JSON.stringify(settled)}`);

  const ledger = await withTimeout(
    checkLedger({ databaseUrl: pg.url(API_DATABASE), gatewayUrl, settleMs: 10_000 }),
    60_000,
    'check:ledger',
  ).catch((error) => ({
    violations: [`could not run: ${error.message}`],
    intents: null,
    capturedIntents: null,
    confirmedBookings: null,
    attempts: 0,
  }));
  const sql = await sqlChecks(apiDb);
  const answers = await answersAgainstRows(apiDb, world.book);
  const deliveries = await deliveriesAgainstReceiver(apiDb, receiver, endpointIndex);
  const deadList = await call('setup', 'GET', '/admin/outbox?status=dead&limit=1', admin);
  const pendingList = await call('setup', 'GET', '/admin/outbox?status=pending&limit=1', admin);
  await apiDb.end().catch(() => undefined);
  await gatewayDb.end().catch(() => undefined);
  await agent.close().catch(() => undefined);

  const violations = [...sql.violations];
  for (const v of ledger.violations.slice(0, 20)) violations.push(`check:ledger: ${v}`);
  if (ledger.violations.length > 20)
    violations.push(`check:ledger: ... ${ledger.violations.length - 20} more`);
  const outboxPending = Number(pendingList.headers['x-total-count'] ?? sql.outbox.pending ?? 0);
  if (pendingList.status !== 200)
    violations.push(`GET /admin/outbox?status=pending: ${pendingList.status}`);
  if (outboxPending > 0 || (sql.outbox.pending ?? 0) > 0) {
    violations.push(
      `outbox: ${Math.max(outboxPending, sql.outbox.pending ?? 0)} messages still pending after the settle time`,
    );
  }
  if ((sql.deliveries.pending ?? 0) > 0) {
    violations.push(
      `outbox: ${sql.deliveries.pending} deliveries still pending after the settle time`,
    );
  }
  violations.push(...deliveries.violations, ...answers.violations);
  if (receiver.stats.badSignatures > 0) {
    violations.push(
      `webhooks: ${receiver.stats.badSignatures} bad signatures (${receiver.stats.badSignatureSamples.join('; ')})`,
    );
  }
  const fiveHundreds = state.rec.fiveHundreds;
  const unexcused = fiveHundreds.filter(
    (item) => !overlapsPgWindow(item, state.pgWindows, state.t0),
  );
  for (const item of unexcused.slice(0, 10)) {
    violations.push(
      `500 outside a PostgreSQL outage: ${item.kind} at ${item.from.toFixed(1)}-${item.to.toFixed(1)} s ` +
        `on instance ${item.backend}: ${item.body}`,
    );
  }
  if (unexcused.length > 10)
    violations.push(`500 outside a PostgreSQL outage: ... ${unexcused.length - 10} more`);
  // An API instance that dies on its own is Seatlock's failure: a violation. The gateway simulator
  // stands in for the payment provider; its crash is a fault Seatlock must survive (it is
  // restarted, like a provider coming back) and is reported apart, as an anomaly of the test rig.
  const anomalies = [];
  for (const proc of [...apis, gateway]) {
    for (const exit of proc.unexpectedExits) {
      const last = exit.tail
        .map((line) => {
          try {
            const entry = JSON.parse(line);
            return `${entry.msg ?? ''}${entry.err ? ` (${entry.err.message ?? ''})` : ''}`;
          } catch {
            return line;
          }
        })
        .filter(Boolean)
        .slice(-3)
        .join(' | ')
        .slice(0, 400);
      (proc === gateway ? anomalies : violations).push(
        `${proc.name} exited on its own at ${exit.at.toFixed(1)} s (${exit.code ?? exit.signal}), ` +
          `restarted: ${last}`,
      );
    }
  }
  if (state.faultError) violations.push(`fault schedule: ${state.faultError}`);
  const keys = receiver.stats.keys;
  const received = [...keys.values()].reduce((sum, n) => sum + n, 0);
  const errorLogs = {};
  for (const api of apis) {
    for (const e of api.errors) {
      const key = `${e.msg}${e.err ? `: ${e.err}` : ''}`.slice(0, 120);
      errorLogs[key] = (errorLogs[key] || 0) + 1;
    }
  }
  const report = {
    chaos: options.quick ? 'quick' : 'full',
    mode: options.quick ? '--quick' : 'full',
    ok: violations.length === 0,
    customers: options.customers,
    durationSeconds: options.duration,
    loadSeconds,
    wallSeconds: seconds(Date.now() - wallStart),
    faults: state.faults,
    pgWindows: state.pgWindows.map((w) => ({
      from: seconds(w.from - state.t0),
      to: w.to ? seconds(w.to - state.t0) : null,
    })),
    requests: {
      total: state.rec.total,
      byStatus: state.rec.byStatus,
      byKind: state.rec.byKind,
      excused500: fiveHundreds.length - unexcused.length,
      unexcused500: unexcused.length,
      fiveHundreds: fiveHundreds.slice(0, 50),
    },
    proxyByInstance: proxy.counts,
    restarts: Object.fromEntries([...apis, gateway].map((proc) => [proc.name, proc.starts - 1])),
    unexpectedExits: [...apis, gateway].flatMap((proc) =>
      proc.unexpectedExits.map((exit) => ({ process: proc.name, ...exit })),
    ),
    bookings: sql.bookings,
    payments: sql.payments,
    outbox: sql.outbox,
    outboxDeadListed: Number(deadList.headers['x-total-count'] ?? 0),
    deliveries: sql.deliveries,
    methods: state.methods,
    actions: state.actions,
    webhooks: {
      received,
      distinct: keys.size,
      duplicates: received - keys.size,
      answered503: receiver.stats.answered503,
      badSignatures: receiver.stats.badSignatures,
      byType: receiver.stats.byType,
      deliveredInDb: deliveries.delivered,
    },
    answersChecked: answers.checked,
    settle: settled,
    heldPastTtl: sql.heldPastTtl,
    ledger: {
      violations: ledger.violations,
      intents: ledger.intents,
      capturedIntents: ledger.capturedIntents,
      confirmedBookings: ledger.confirmedBookings,
      attempts: ledger.attempts,
    },
    errorLogs: Object.fromEntries(
      Object.entries(errorLogs)
        .sort((a, b) => b[1] - a[1])
        .slice(0, 10),
    ),
    anomalies,
    violations,
  };
  return report;
}

// ---------------------------------------------------------------------------------------------

let options;
try {
  options = parseArgs(process.argv.slice(2));
} catch (error) {
  process.stderr.write(`${error.message}\n`);
  process.exit(2);
}

const watchdogMs = (options.duration + options.settle + 240) * 1000;
const watchdog = setTimeout(() => {
  log(`gave up after ${watchdogMs / 1000} s`);
  cleanupSync();
  process.exit(1);
}, watchdogMs);
watchdog.unref();

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    log(`${signal}: stopping every child, PostgreSQL and Redis; removing the temp dirs`);
    void withTimeout(cleanup(), 20_000, 'clean-up')
      .catch(() => cleanupSync())
      .finally(() => process.exit(130));
  });
}
process.on('exit', () => cleanupSync());

async function main() {
  let report;
  try {
    report = await run(options);
  } finally {
    log('stopping every child, PostgreSQL and Redis; removing the temp dirs');
    await withTimeout(cleanup(), 60_000, 'clean-up').catch(() => cleanupSync());
  }
  printReport(report);
  if (options.json) process.stdout.write(`${JSON.stringify(report)}\n`);
  return report.ok ? 0 : 1;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error) => {
    log(error instanceof BenchError ? error.message : error.stack || String(error));
    process.stdout.write('chaos: ERROR (the run did not complete)\n');
    if (options.json) {
      process.stdout.write(
        `${JSON.stringify({ chaos: options.quick ? 'quick' : 'full', ok: false, error: error.message })}\n`,
      );
    }
    process.exitCode = 1;
  },
);
