'use strict';

/*
 * Notification benchmark: outbox messages -> signed webhooks at a local receiver, per second.
 *
 *   npm run bench:notify -- [--messages N] [--instances N] [--batch N] [--json] [--no-pgbench]
 *
 * It creates a fresh database (seatlock_bench_notify), starts a plain node:http receiver in this
 * process (answers 200 at once, records each request's Idempotency-Key and arrival time, checks every
 * Seatlock-Signature with the endpoint's secret) and N BUILT API processes on that database
 * (--instances, default 1; GATEWAY_URL points at an unused port so no simulator is spawned, SMTP_URL
 * is unset so email is off, WEBHOOK_ALLOW_PRIVATE_NETWORKS=true for the loopback receiver). Through
 * the API it registers a customer, creates one webhook endpoint (events ["*"]) pointing at the
 * receiver, and holds a seat: that real booking's hold is delivered first (the warm-up) and its body
 * is the payload of every message.
 *
 * Then it inserts --messages outbox rows (default 10,000) with SQL, as test/webhooks.e2e-spec.ts
 * does, committed in transactions of --batch rows (100) one after the other, each with the
 * pg_notify('outbox') NotificationService.enqueue sends; the topics cycle through booking.held,
 * .confirmed, .released, .expired and .cancelled with the booking's status to match. A message's
 * commit time is its created_at (clock_timestamp() at insert; the commit follows within the batch's
 * few milliseconds, measured and reported). The dispatcher(s) fan each message out (an in-app
 * notification and one webhook delivery) and the delivery worker(s) send them.
 *
 * Measured:
 *   messages/s         distinct messages delivered / (last arrival at the receiver - first created_at)
 *   latency            arrival at the receiver - created_at, p50/p99 (both clocks are this machine's
 *                      wall clock: PostgreSQL's clock_timestamp() and performance.timeOrigin + now())
 *   stages             created_at -> dispatched_at (fan-out) and dispatched_at -> arrival, and the
 *                      rate of each stage, from the rows
 *   duplicates         requests whose Idempotency-Key was seen before (must be 0: exit 1 otherwise)
 *   end state          outbox rows and deliveries per status (all sent / delivered), in-app
 *                      notifications written (must equal the messages), attempts recorded
 *   CPU split          /proc/<pid>/stat of each API process, this process (inserts + receiver),
 *                      redis-server and PostgreSQL (bench database vs server processes), over the run
 *
 * Ceilings, with the API(s) stopped:
 *   HTTP               a child Node process POSTs the same signed bodies (fresh ids, signed per request)
 *                      to the same receiver over keep-alive with the delivery worker's concurrency
 *                      (16 per instance, undici Agent of 64 connections): what the receiver and one
 *                      sending Node process can do.
 *   pgbench            (/usr/lib/postgresql/15/bin/pgbench; skipped with a note if missing) the SQL the
 *                      app runs per message, statement for statement: (a) the dispatcher's claim +
 *                      fan-out transaction at the dispatcher's concurrency (one transaction at a time
 *                      per instance), and (b) the whole per-message SQL (dispatcher + delivery worker's
 *                      claim, endpoint read and recorded attempt) at 8 clients. Claims are per message
 *                      here (the app claims 100 and up to 16 at a time), so both read a little low.
 */

const { createHmac, randomBytes, timingSafeEqual } = require('node:crypto');
const { existsSync, mkdtempSync, rmSync, writeFileSync } = require('node:fs');
const { createServer } = require('node:http');
const os = require('node:os');
const path = require('node:path');
const { setTimeout: sleep } = require('node:timers/promises');
const { Client: PgClient } = require('pg');
const { Agent } = require('undici');
const {
  BenchError,
  CpuSampler,
  benchDatabaseName,
  freePort,
  latencySummary,
  round,
  withTimeout,
  apiNodeOptions,
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
const { expectStatus, httpCaller } = require('./bench-http');
const { PGBENCH_CANDIDATES, findPgbench, parsePgbench, withClient } = require('./bench-postgres');

const ROOT = path.resolve(__dirname, '..', '..');
const API_MAIN = path.join(ROOT, 'dist', 'apps', 'api', 'apps', 'api', 'src', 'main.js');
const DATABASE = benchDatabaseName('seatlock_bench_notify');
/** DeliveryWorkerService's DELIVERY_CONCURRENCY: sends in flight per instance. */
const WORKER_CONCURRENCY = 16;
/** The webhook channel's undici Agent. */
const WORKER_CONNECTIONS = 64;
const PGBENCH_FULL_CLIENTS = 8;
const TOPICS = [
  ['booking.held', 'held'],
  ['booking.confirmed', 'confirmed'],
  ['booking.released', 'released'],
  ['booking.expired', 'expired'],
  ['booking.cancelled', 'cancelled'],
];
const BUSY_MACHINE_CORES = 0.25;
const TIMEOUTS = {
  total: 30 * 60_000,
  ready: 60_000,
  request: 30_000,
  /** No new delivery at the receiver for this long: the run has stalled. */
  stall: 60_000,
  stop: 15_000,
  pgbench: 300_000,
};

const USAGE = `Usage: npm run bench:notify -- [--messages N] [--instances N] [--batch N] [--json] [--no-pgbench]

  --messages N    outbox messages to deliver (default 10000)
  --instances N   API processes on the same database, all dispatching (default 1)
  --batch N       messages per committed insert transaction (default 100)
  --json          also print one JSON object as the last line of stdout
  --no-pgbench    skip the pgbench ceilings
  --pgbench PATH  the pgbench binary (default: ${PGBENCH_CANDIDATES.join(', ')}, then PATH)

Environment: DATABASE_URL (only its server is used; the bench database is ${DATABASE}),
REDIS_URL (default redis://127.0.0.1:6379). Both must be on this machine.`;

// ---------------------------------------------------------------------------------------------
// Small helpers

function log(message) {
  process.stderr.write(`[notify] ${message}\n`);
}

/** Wall-clock milliseconds with sub-millisecond resolution, comparable with PostgreSQL's clock. */
function wallMs() {
  return performance.timeOrigin + performance.now();
}

function parseArgs(argv) {
  const options = { messages: 10_000, instances: 1, batch: 100, json: false, pgbench: true };
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
    if (name === '--json') options.json = true;
    else if (name === '--no-pgbench') options.pgbench = false;
    else if (name === '--help' || name === '-h') {
      process.stdout.write(`${USAGE}\n`);
      process.exit(0);
    } else if (name === '--messages') options.messages = number(name, take(), 1, 1_000_000);
    else if (name === '--instances') options.instances = number(name, take(), 1, 8);
    else if (name === '--batch') options.batch = number(name, take(), 1, 10_000);
    else if (name === '--pgbench') {
      options.pgbenchPath = take();
      if (!options.pgbenchPath) throw new BenchError('--pgbench needs a path');
    } else {
      throw new BenchError(`unknown argument ${argv[i]}\n${USAGE}`);
    }
  }
  return options;
}

// ---------------------------------------------------------------------------------------------
// Signatures: verified independently of the app's code (same scheme: t=<unix>,v1=<hex HMAC>)

function signatureProblem(secret, raw, header, nowSeconds = Math.floor(Date.now() / 1000)) {
  if (typeof header !== 'string') return 'missing';
  let timestamp;
  const signatures = [];
  for (const part of header.split(',')) {
    const [name, value = ''] = part.trim().split('=', 2);
    if (name === 't' && /^\d{1,12}$/.test(value)) timestamp = Number(value);
    if (name === 'v1' && /^[0-9a-f]{64}$/.test(value)) signatures.push(Buffer.from(value, 'hex'));
  }
  if (timestamp === undefined || signatures.length === 0) return 'malformed';
  if (Math.abs(nowSeconds - timestamp) > 300) return 'outside the 5-minute tolerance';
  const expected = createHmac('sha256', secret).update(`${timestamp}.`).update(raw).digest();
  return signatures.some((s) => timingSafeEqual(s, expected)) ? null : 'does not match';
}

// ---------------------------------------------------------------------------------------------
// The receiver: a plain node:http server in this process

function startReceiver() {
  const state = {
    secret: '',
    /** Idempotency-Key -> arrival times (wall ms), in order. */
    arrivals: new Map(),
    requests: 0,
    duplicates: 0,
    badSignatures: 0,
    badSignatureSamples: [],
    missingKeys: 0,
    lastArrival: 0,
    firstArrival: 0,
  };
  const server = createServer((req, res) => {
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', () => {
      const at = wallMs();
      res.writeHead(200).end();
      state.requests += 1;
      const key = req.headers['idempotency-key'];
      const raw = Buffer.concat(chunks);
      const problem = signatureProblem(state.secret, raw, req.headers['seatlock-signature']);
      if (problem) {
        state.badSignatures += 1;
        if (state.badSignatureSamples.length < 5) state.badSignatureSamples.push(problem);
      }
      if (typeof key !== 'string') {
        state.missingKeys += 1;
        return;
      }
      const seen = state.arrivals.get(key);
      if (seen) {
        seen.push(at);
        state.duplicates += 1;
      } else state.arrivals.set(key, [at]);
      if (state.firstArrival === 0) state.firstArrival = at;
      state.lastArrival = at;
    });
  });
  server.keepAliveTimeout = 60_000;
  server.headersTimeout = 65_000;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      resolve({
        server,
        state,
        url: `http://127.0.0.1:${port}/hooks`,
        reset() {
          state.arrivals = new Map();
          state.requests = 0;
          state.duplicates = 0;
          state.badSignatures = 0;
          state.badSignatureSamples = [];
          state.missingKeys = 0;
          state.firstArrival = 0;
          state.lastArrival = 0;
        },
        close() {
          server.closeAllConnections();
          return new Promise((done) => server.close(() => done()));
        },
      });
    });
  });
}

const databaseUrls = () => localDatabaseUrls({ api: DATABASE });

// ---------------------------------------------------------------------------------------------
// HTTP to the API

const call = httpCaller({ timeoutMs: TIMEOUTS.request });

// ---------------------------------------------------------------------------------------------
// Child processes (the API instances, the HTTP ceiling's client, pgbench)

const children = new ChildProcesses({ cwd: ROOT, stopTimeoutMs: TIMEOUTS.stop, log });

function apiEnv(urls, redis, port, adminToken, migrate) {
  const env = { ...process.env };
  delete env.SMTP_URL; // email off: the webhook path alone is measured
  return {
    ...env,
    PORT: String(port),
    HOST: '127.0.0.1',
    DATABASE_URL: urls.api,
    REDIS_URL: redis,
    ADMIN_TOKEN: adminToken,
    GATEWAY_URL: 'http://127.0.0.1:9',
    RATE_LIMIT_PER_MINUTE: '0',
    LOG_LEVEL: 'warn',
    MIGRATIONS_RUN: migrate ? 'true' : 'false',
    SWEEP_INTERVAL_MS: '3600000',
    RECONCILE_INTERVAL_MS: '3600000',
    WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'true',
  };
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL

function pgClient(connectionString) {
  const client = new PgClient({ connectionString, connectionTimeoutMillis: 5_000 });
  client.on('error', (error) => log(`PostgreSQL connection lost: ${error.message}`));
  return client;
}

async function recreateDatabase(adminUrl) {
  await withClient(adminUrl, async (client) => {
    await client.query(`DROP DATABASE IF EXISTS ${DATABASE} WITH (FORCE)`);
    await client.query(`CREATE DATABASE ${DATABASE}`);
  });
}

async function dropDatabase(adminUrl) {
  await withClient(adminUrl, (client) =>
    client.query(`DROP DATABASE IF EXISTS ${DATABASE} WITH (FORCE)`),
  );
}

/** The realistic payloads: the real booking's body, its status matching each topic. */
function payloads(booking) {
  return TOPICS.map(([topic, status]) => ({
    topic,
    payload: JSON.stringify({ booking: { ...booking, status } }),
  }));
}

/**
 * Inserts the messages in committed batches, one after the other, each with the NOTIFY that
 * NotificationService.enqueue sends. Answers per message its id and created_at (wall ms), and per
 * batch when the COMMIT was acknowledged.
 */
async function insertMessages(db, options, customerId, bookingId, variants) {
  const messages = [];
  const commitGapsMs = [];
  for (let done = 0; done < options.messages; done += options.batch) {
    const n = Math.min(options.batch, options.messages - done);
    const topics = [];
    const bodies = [];
    for (let i = 0; i < n; i += 1) {
      const variant = variants[(done + i) % variants.length];
      topics.push(variant.topic);
      bodies.push(variant.payload);
    }
    await db.query('BEGIN');
    const { rows } = await db.query(
      `INSERT INTO outbox_messages (id, topic, customer_id, aggregate_id, payload)
       SELECT gen_random_uuid(), t.topic, $1, $2, t.payload
       FROM unnest($3::text[], $4::jsonb[]) WITH ORDINALITY AS t(topic, payload, n)
       ORDER BY t.n
       RETURNING id, (extract(epoch FROM created_at) * 1000)::float8 AS created_ms`,
      [customerId, bookingId, topics, bodies],
    );
    await db.query(`SELECT pg_notify('outbox', '')`);
    await db.query('COMMIT');
    const committed = wallMs();
    let last = 0;
    for (const row of rows) {
      messages.push({ id: row.id, createdMs: row.created_ms });
      last = Math.max(last, row.created_ms);
    }
    commitGapsMs.push(committed - last);
  }
  return { messages, commitGapsMs };
}

async function waitDelivered(receiver, ids, apis) {
  let seen = -1;
  let progressAt = Date.now();
  const deadline = Date.now() + TIMEOUTS.total;
  for (;;) {
    let delivered = 0;
    for (const id of ids) if (receiver.state.arrivals.has(id)) delivered += 1;
    if (delivered === ids.length) return delivered;
    if (delivered !== seen) {
      seen = delivered;
      progressAt = Date.now();
    }
    const dead = apis.find(hasExited);
    if (dead) throw new BenchError(`${dead.name} exited mid-run:\n${dead.tail.join('\n')}`);
    if (Date.now() - progressAt > TIMEOUTS.stall || Date.now() > deadline) {
      throw new BenchError(
        `stalled: ${delivered} of ${ids.length} messages at the receiver, none more for ` +
          `${TIMEOUTS.stall / 1000} s`,
      );
    }
    await sleep(delivered * 10 > ids.length * 9 ? 20 : 200);
  }
}

/** Until every message is sent and every delivery recorded (the worker records after the 200). */
async function waitRecorded(db, ids) {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const { rows } = await db.query(
      `SELECT (SELECT count(*) FROM outbox_messages WHERE id = ANY($1) AND status = 'sent')::int
                AS sent,
              (SELECT count(*) FROM notification_deliveries
               WHERE message_id = ANY($1) AND status <> 'pending')::int AS settled`,
      [ids],
    );
    if (rows[0].sent === ids.length && rows[0].settled >= ids.length) return;
    if (Date.now() > deadline) return;
    await sleep(100);
  }
}

async function finalState(db, ids) {
  const byStatus = async (sql) =>
    Object.fromEntries((await db.query(sql, [ids])).rows.map((row) => [row.status, row.n]));
  const outbox = await byStatus(
    `SELECT status, count(*)::int AS n FROM outbox_messages WHERE id = ANY($1) GROUP BY status`,
  );
  const deliveries = await byStatus(
    `SELECT status, count(*)::int AS n FROM notification_deliveries WHERE message_id = ANY($1)
     GROUP BY status`,
  );
  const { rows } = await db.query(
    `SELECT (SELECT count(*) FROM notifications WHERE message_id = ANY($1))::int AS in_app,
            (SELECT count(*) FROM notification_deliveries WHERE message_id = ANY($1))::int
              AS delivery_rows,
            (SELECT count(*) FROM delivery_attempts a JOIN notification_deliveries d
               ON d.id = a.delivery_id WHERE d.message_id = ANY($1))::int AS attempts`,
    [ids],
  );
  const stages = await db.query(
    `SELECT o.id, o.dispatched_by,
            (extract(epoch FROM o.dispatched_at) * 1000)::float8 AS dispatched_ms,
            (extract(epoch FROM d.delivered_at) * 1000)::float8 AS recorded_ms
     FROM outbox_messages o LEFT JOIN notification_deliveries d ON d.message_id = o.id
     WHERE o.id = ANY($1)`,
    [ids],
  );
  return {
    outbox,
    deliveries,
    inApp: rows[0].in_app,
    deliveryRows: rows[0].delivery_rows,
    attempts: rows[0].attempts,
    stages: new Map(stages.rows.map((row) => [row.id, row])),
  };
}

// ---------------------------------------------------------------------------------------------
// Where the CPU goes

function cpuSampler(admin, apiPids, extra = {}) {
  let backends = new Map();
  return new CpuSampler({
    intervalMs: 500,
    prepare: async () => {
      const { rows } = await admin.query(`SELECT pid, datname FROM pg_stat_activity`);
      backends = new Map(rows.map((row) => [Number(row.pid), row.datname]));
    },
    classify: (proc) => {
      const index = apiPids.indexOf(proc.pid);
      if (index !== -1) return apiPids.length === 1 ? 'API (node)' : `API #${index + 1} (node)`;
      if (proc.pid === process.pid) return 'bench: inserts + receiver (this node)';
      if (extra.client && proc.pid === extra.client) return 'HTTP ceiling client (node)';
      if (proc.comm === 'redis-server') return 'redis-server';
      if (proc.comm === 'pgbench') return 'pgbench';
      if (proc.comm === 'postgres') {
        const database = backends.get(proc.pid);
        if (database === DATABASE) return 'PostgreSQL: bench database';
        if (!database || database === 'postgres') return 'PostgreSQL: server processes';
        return null;
      }
      return null;
    },
  });
}

function sumCores(cpu, predicate) {
  return round(
    Object.entries(cpu.groups)
      .filter(([name]) => predicate(name))
      .reduce((sum, [, group]) => sum + group.cores, 0),
    2,
  );
}

function cpuSplit(cpu) {
  return {
    api: sumCores(cpu, (name) => name.startsWith('API')),
    postgres: sumCores(cpu, (name) => name.startsWith('PostgreSQL')),
    bench: sumCores(cpu, (name) => name.startsWith('bench')),
    redis: sumCores(cpu, (name) => name === 'redis-server'),
    other: cpu.otherCores,
    machine: cpu.machineCores,
  };
}

function cpuMsPerMessage(cpu, messages) {
  return Object.fromEntries(
    Object.entries(cpu.groups).map(([name, group]) => [
      name,
      round((group.cpuSeconds * 1000) / Math.max(1, messages), 3),
    ]),
  );
}

// ---------------------------------------------------------------------------------------------
// Ceiling 1: a plain Node client hitting the same receiver with the same signed bodies

const HTTP_CLIENT = String.raw`
const { createHmac, randomUUID } = require('node:crypto');
const { Agent, request } = require('undici');
const [url, secret, payload, total, concurrency, connections] = JSON.parse(process.argv[1]);
const agent = new Agent({ connections });
let next = 0;
let ok = 0;
let failed = 0;
const worker = async () => {
  while (next < total) {
    next += 1;
    const id = randomUUID();
    const body = JSON.stringify({ id, type: 'booking.held', createdAt: new Date().toISOString(),
      data: JSON.parse(payload) });
    const t = Math.floor(Date.now() / 1000);
    const v1 = createHmac('sha256', secret).update(t + '.').update(body).digest('hex');
    try {
      const response = await request(url, { method: 'POST', dispatcher: agent, body, headers: {
        'content-type': 'application/json', 'user-agent': 'Seatlock-Webhooks/1.0',
        'seatlock-signature': 't=' + t + ',v1=' + v1, 'idempotency-key': id } });
      await response.body.dump();
      if (response.statusCode === 200) ok += 1; else failed += 1;
    } catch { failed += 1; }
  }
};
const started = performance.now();
Promise.all(Array.from({ length: concurrency }, worker)).then(async () => {
  const seconds = (performance.now() - started) / 1000;
  await agent.close();
  process.stdout.write(JSON.stringify({ ok, failed, seconds }) + '\n');
});
`;

async function httpCeiling(receiver, admin, secret, payload, options) {
  receiver.reset();
  receiver.state.secret = secret;
  const concurrency = WORKER_CONCURRENCY * options.instances;
  const total = options.messages;
  const proc = children.command(
    'HTTP ceiling client',
    [
      process.execPath,
      '-e',
      HTTP_CLIENT,
      JSON.stringify([receiver.url, secret, payload, total, concurrency, WORKER_CONNECTIONS]),
    ],
    process.env,
  );
  const sampler = cpuSampler(admin, [], { client: proc.child.pid });
  await sampler.start();
  const exit = await withTimeout(proc.exited, TIMEOUTS.pgbench, 'the HTTP ceiling client');
  const cpu = await sampler.stop();
  let result;
  try {
    result = JSON.parse(proc.output.trim().split('\n').pop());
  } catch {
    throw new BenchError(
      `the HTTP ceiling client failed (${JSON.stringify(exit)}): ${proc.output}`,
    );
  }
  return {
    concurrency,
    connections: WORKER_CONNECTIONS,
    requests: total,
    ok: result.ok,
    failed: result.failed,
    seconds: round(result.seconds, 3),
    requestsPerSecond: round(result.ok / result.seconds, 1),
    receiverBadSignatures: receiver.state.badSignatures,
    receiverDuplicates: receiver.state.duplicates,
    cpu,
  };
}

// ---------------------------------------------------------------------------------------------
// Ceiling 2: pgbench replaying the app's per-message SQL

/** A message id per (client, seq), and its claim token. */
const PGBENCH_IDS = String.raw`\set seq :seq + 1
\set bn (:client_id + 1) * 1000000000 + :seq
`;

/**
 * OutboxRepository.claim (LIMIT 1 here, the app claims 100), then the dispatcher's fan-out
 * transaction: lockClaimed, the in-app INSERT, the webhook channel's INSERT ... SELECT over the
 * customer's endpoints and its pg_notify, markSent.
 */
const PGBENCH_DISPATCH = String.raw`UPDATE outbox_messages o
  SET claimed_by = lpad(to_hex(:bn::bigint), 32, 'c')::uuid, claimed_until = now() + 30000 * interval '1 millisecond'
  FROM (SELECT id FROM outbox_messages
        WHERE id = lpad(to_hex(:bn::bigint), 32, '0')::uuid AND status = 'pending' AND available_at <= now()
          AND (claimed_until IS NULL OR claimed_until <= now())
        FOR UPDATE SKIP LOCKED) due
  WHERE o.id = due.id
  RETURNING o.id, o.topic, o.customer_id, o.aggregate_id, o.payload, o.status, o.attempts, o.available_at,
            o.last_error, o.dispatched_at, o.dispatched_by, o.created_at;
BEGIN;
SELECT 1 FROM outbox_messages WHERE id = lpad(to_hex(:bn::bigint), 32, '0')::uuid
  AND claimed_by = lpad(to_hex(:bn::bigint), 32, 'c')::uuid AND status = 'pending' FOR UPDATE;
INSERT INTO notifications (id, message_id, customer_id, booking_id, type, title, body, created_at)
  VALUES (gen_random_uuid(), lpad(to_hex(:bn::bigint), 32, '0')::uuid, :cust, :booking, 'booking.held',
          'Seats held', :text, now())
  ON CONFLICT (message_id) DO NOTHING;
INSERT INTO notification_deliveries (id, message_id, channel, target, endpoint_id)
  SELECT gen_random_uuid(), lpad(to_hex(:bn::bigint), 32, '0')::uuid, 'webhook', e.url, e.id
  FROM webhook_endpoints e
  WHERE e.customer_id = :cust AND e.status = 'active'
    AND ('*' = ANY (e.events) OR 'booking.held' = ANY (e.events))
  ORDER BY e.created_at
  ON CONFLICT (message_id, channel, target) DO NOTHING;
SELECT pg_notify('deliveries', '');
UPDATE outbox_messages
  SET status = 'sent', dispatched_at = now(), dispatched_by = 'pgbench', claimed_by = NULL,
      claimed_until = NULL, last_error = NULL
  WHERE id = lpad(to_hex(:bn::bigint), 32, '0')::uuid;
COMMIT;
`;

/**
 * The delivery worker's share: DeliveryRepository.claim (by message here, LIMIT 16 in the app),
 * WebhookEndpointRepository.findForSend, recordAttempt's transaction (UPDATE + attempt row).
 */
const PGBENCH_DELIVER = String.raw`WITH due AS (
  SELECT id FROM notification_deliveries
  WHERE message_id = lpad(to_hex(:bn::bigint), 32, '0')::uuid AND status = 'pending'
    AND next_attempt_at <= now() AND channel = ANY(ARRAY['webhook'])
    AND (claimed_until IS NULL OR claimed_until <= now())
  LIMIT 16 FOR UPDATE SKIP LOCKED
), claimed AS (
  UPDATE notification_deliveries d
  SET claimed_by = lpad(to_hex(:bn::bigint), 32, 'd')::uuid, claimed_until = now() + 30000 * interval '1 millisecond'
  FROM due WHERE d.id = due.id
  RETURNING d.id, d.message_id, d.channel, d.target, d.endpoint_id, d.attempts
)
SELECT c.id AS did, o.topic, o.customer_id, o.aggregate_id, o.payload,
       o.attempts AS message_attempts, o.created_at AS message_created_at
FROM claimed c JOIN outbox_messages o ON o.id = c.message_id
ORDER BY o.created_at \gset
SELECT id, customer_id, url, events, secret, status, disabled_reason, created_at, updated_at
  FROM webhook_endpoints WHERE id = :endpoint;
BEGIN;
UPDATE notification_deliveries
  SET attempts = attempts + 1, claimed_by = NULL, claimed_until = NULL, last_error = NULL,
      status = CASE WHEN true THEN 'delivered' WHEN false THEN 'cancelled'
                    WHEN attempts + 1 >= 8 THEN 'dead' ELSE 'pending' END,
      next_attempt_at = now() + 1000 * interval '1 millisecond',
      delivered_at = CASE WHEN true THEN now() END
  WHERE id = :did::uuid AND claimed_by = lpad(to_hex(:bn::bigint), 32, 'd')::uuid AND status = 'pending'
  RETURNING status, attempts;
INSERT INTO delivery_attempts (delivery_id, attempt, status_code, latency_ms, error)
  VALUES (:did::uuid, 1, 200, 1, NULL);
COMMIT;
`;

async function preparePgbench(apiUrl, clients, perClient, customerId, bookingId, payload) {
  await withClient(apiUrl, async (client) => {
    await client.query(
      `INSERT INTO outbox_messages (id, topic, customer_id, aggregate_id, payload)
       SELECT lpad(to_hex((c + 1)::bigint * 1000000000 + s), 32, '0')::uuid, 'booking.held', $1, $2, $3::jsonb
       FROM generate_series(0, $4::int - 1) c, generate_series(1, $5::int) s`,
      [customerId, bookingId, payload, clients, perClient],
    );
    await client.query('VACUUM ANALYZE');
  });
}

async function pgbenchRun(binary, urls, admin, name, script, clients, perClient, constants) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'seatlock-notify-pgbench-'));
  try {
    const file = path.join(dir, `${name}.sql`);
    writeFileSync(file, script);
    const url = new URL(urls.api);
    const defines = Object.entries(constants).flatMap(([key, value]) => ['-D', `${key}=${value}`]);
    const args = [
      binary,
      '-n',
      '-M',
      'extended',
      '-c',
      String(clients),
      '-j',
      String(Math.min(clients, os.cpus().length)),
      '-t',
      String(perClient),
      '-f',
      file,
      '-D',
      'seq=0',
      ...defines,
      '-h',
      url.hostname,
      '-p',
      url.port || '5432',
      '-U',
      decodeURIComponent(url.username || 'postgres'),
      DATABASE,
    ];
    const env = { ...process.env, PGPASSWORD: decodeURIComponent(url.password || '') };
    const sampler = cpuSampler(admin, []);
    await sampler.start();
    const run = await children.runToEnd('pgbench', args, env, TIMEOUTS.pgbench);
    const cpu = await sampler.stop();
    const { tps, processed, failed, latencyAverageMs, aborted } = parsePgbench(run.output);
    const problems = [];
    if (run.code !== 0) problems.push(`pgbench ${name} exited with ${run.code ?? run.signal}`);
    if (failed) problems.push(`${failed} failed transactions`);
    if (aborted) problems.push('a client aborted');
    return {
      clients,
      transactions: processed,
      messagesPerSecond: tps === null ? null : round(tps, 1),
      latencyAverageMs,
      postgresCores: sumCores(cpu, (n) => n.startsWith('PostgreSQL')),
      pgbenchCores: sumCores(cpu, (n) => n === 'pgbench'),
      problems,
      outputTail: problems.length ? run.output.split('\n').slice(-15).join('\n') : undefined,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function pgbenchCeilings(options, urls, admin, setup) {
  const binary = findPgbench(options.pgbenchPath);
  if (!binary) {
    return {
      skipped:
        'no pgbench found (Debian: apt-get install postgresql-client-15, which ships ' +
        '/usr/lib/postgresql/15/bin/pgbench); the SQL ceilings are not measured',
    };
  }
  const constants = {
    cust: setup.customerId,
    booking: setup.bookingId,
    endpoint: setup.endpointId,
    text: 'A1 held for you (EUR 42.00) until 2027-01-01T00:00:00.000Z; pay to confirm. Booking status: held.',
  };
  // (a) the dispatcher alone, one client per instance: its transactions are serial per instance.
  // (b) dispatcher + delivery worker SQL, 8 clients: what PostgreSQL can do per message at all.
  const dispatchClients = options.instances;
  const perDispatch = Math.max(1000, Math.ceil(options.messages / dispatchClients));
  const perFull = Math.max(500, Math.ceil(options.messages / PGBENCH_FULL_CLIENTS));
  // Disjoint ids: (b)'s clients start at client number 100 (ids (client + 1) * 1e9 + seq).
  await preparePgbench(
    urls.api,
    dispatchClients,
    perDispatch,
    setup.customerId,
    setup.bookingId,
    setup.payload,
  );
  log(`pgbench (a): dispatcher SQL, ${dispatchClients} client(s) x ${perDispatch} messages`);
  const dispatch = await pgbenchRun(
    binary,
    urls,
    admin,
    'dispatch',
    PGBENCH_IDS + PGBENCH_DISPATCH,
    dispatchClients,
    perDispatch,
    constants,
  );
  await withClient(urls.api, (client) =>
    client.query(
      `TRUNCATE outbox_messages, notification_deliveries, delivery_attempts, notifications`,
    ),
  );
  await preparePgbench(
    urls.api,
    PGBENCH_FULL_CLIENTS,
    perFull,
    setup.customerId,
    setup.bookingId,
    setup.payload,
  );
  log(`pgbench (b): full per-message SQL, ${PGBENCH_FULL_CLIENTS} clients x ${perFull} messages`);
  const full = await pgbenchRun(
    binary,
    urls,
    admin,
    'full',
    PGBENCH_IDS + PGBENCH_DISPATCH + PGBENCH_DELIVER,
    PGBENCH_FULL_CLIENTS,
    perFull,
    constants,
  );
  const { rows } = await withClient(urls.api, (client) =>
    client.query(
      `SELECT (SELECT count(*) FROM notification_deliveries WHERE status = 'delivered')::int AS delivered,
              (SELECT count(*) FROM notifications)::int AS in_app`,
    ),
  );
  if (rows[0].delivered !== PGBENCH_FULL_CLIENTS * perFull) {
    full.problems.push(
      `${rows[0].delivered} deliveries recorded, not ${PGBENCH_FULL_CLIENTS * perFull}`,
    );
  }
  return { binary, queryMode: 'extended', dispatch, full };
}

// ---------------------------------------------------------------------------------------------
// The run

function limitedBy(cpu, cpus, split, report) {
  const busiestApi = Math.max(
    0,
    ...Object.entries(cpu.groups)
      .filter(([name]) => name.startsWith('API'))
      .map(([, group]) => group.cores),
  );
  const dispatchCeiling = report.ceiling.pgbench?.dispatch?.messagesPerSecond;
  const parts = [];
  if (busiestApi >= 0.85) {
    parts.push(`an API Node process: ${busiestApi} of the 1 core an event loop can use`);
  } else if (split.machine !== null && split.machine >= 0.85 * cpus) {
    parts.push(
      `the machine's CPUs: ${split.machine} of ${cpus} cores busy (API ${split.api}, ` +
        `PostgreSQL ${split.postgres}, bench ${split.bench})`,
    );
  } else {
    parts.push(`nothing saturated (${split.machine ?? '?'} of ${cpus} cores busy): latency-bound`);
  }
  const stages = report.stages;
  if (split.other !== null && split.other > BUSY_MACHINE_CORES) {
    parts.push(`other processes (not ours) took ${split.other} cores meanwhile`);
  }
  if (stages.dispatchPerSecond && stages.deliveryPerSecond) {
    parts.push(
      stages.dispatchPerSecond < stages.deliveryPerSecond * 1.1
        ? `the fan-out stage paces the run (${stages.dispatchPerSecond} messages/s dispatched, ` +
            `${round((1000 * report.instances) / stages.dispatchPerSecond, 2)} ms per message ` +
            `per dispatcher, one transaction each; deliveries keep up)`
        : `the delivery stage paces the run (${stages.deliveryPerSecond}/s after fan-out at ` +
            `${stages.dispatchPerSecond}/s)`,
    );
  }
  if (dispatchCeiling) {
    parts.push(
      `pgbench replays the serial fan-out SQL at ${dispatchCeiling} messages/s with ` +
        `${report.instances} client(s)`,
    );
  }
  return parts.join('; ');
}

async function run(options, urls, redis) {
  const adminToken = `bench-admin-${randomBytes(16).toString('hex')}`;
  log(`fresh database ${DATABASE}`);
  await withTimeout(recreateDatabase(urls.admin), 30_000, 'recreating the bench database');

  const setupAgent = new Agent({ connections: 8 });
  const admin = pgClient(urls.admin);
  const db = pgClient(urls.api);
  const receiver = await startReceiver();
  const apis = [];
  const report = { ok: false };
  try {
    await admin.connect();
    for (let i = 0; i < options.instances; i += 1) {
      const port = await freePort();
      const proc = children.node(
        options.instances === 1 ? 'API' : `API #${i + 1}`,
        API_MAIN,
        apiEnv(urls, redis, port, adminToken, i === 0),
        apiNodeOptions(),
      );
      proc.url = `http://127.0.0.1:${port}`;
      log(`starting ${proc.name} on ${proc.url}`);
      // The first one migrates; the others start once the schema is there.
      await waitHealthy(
        proc,
        () => call(setupAgent, proc.url, 'GET', '/health/ready', { timeoutMs: 2_000 }),
        TIMEOUTS.ready,
      );
      apis.push(proc);
    }
    await db.connect();
    const api = apis[0];

    const runId = randomBytes(4).toString('hex');
    const customer = expectStatus(
      await call(setupAgent, api.url, 'POST', '/customers', {
        body: { email: `notify-${runId}@example.test`, name: 'Notify Bench' },
      }),
      201,
      'POST /customers',
    );
    const endpoint = expectStatus(
      await call(setupAgent, api.url, 'POST', '/webhook-endpoints', {
        token: customer.token,
        body: { url: receiver.url, events: ['*'] },
      }),
      201,
      'POST /webhook-endpoints',
    );
    receiver.state.secret = endpoint.secret;
    const event = expectStatus(
      await call(setupAgent, api.url, 'POST', '/admin/events', {
        token: adminToken,
        body: {
          name: `Notify bench ${new Date().toISOString()}`,
          startsAt: '2027-06-01T19:30:00Z',
          venue: 'Bench Arena',
          currency: 'EUR',
          sections: [{ name: 'Floor', rows: 1, seatsPerRow: 4, priceCents: 4200 }],
        },
      }),
      201,
      'POST /admin/events',
    );
    const booking = expectStatus(
      await call(setupAgent, api.url, 'POST', '/bookings', {
        token: customer.token,
        body: { eventId: event.id, seatIds: [event.seats[0].label, event.seats[1].label] },
      }),
      201,
      'POST /bookings',
    );
    // Warm-up: the hold's own booking.held goes all the way to the receiver.
    await withTimeout(
      (async () => {
        while (receiver.state.arrivals.size === 0) await sleep(20);
      })(),
      30_000,
      "the hold's webhook",
    );
    await sleep(500);
    const warmupRequests = receiver.state.requests;
    receiver.reset();

    const variants = payloads(booking);
    const apiLogBefore = apis.map(logSnapshot);
    log(`inserting ${options.messages} messages in batches of ${options.batch}`);
    const sampler = cpuSampler(
      admin,
      apis.map((proc) => proc.child.pid),
    );
    await sampler.start();
    const insertStarted = wallMs();
    const inserted = await insertMessages(db, options, customer.id, booking.id, variants);
    const insertEnded = wallMs();
    const ids = inserted.messages.map((m) => m.id);
    log(`inserted in ${round(insertEnded - insertStarted, 0)} ms; waiting for the receiver`);
    await waitDelivered(receiver, ids, apis);
    const lastArrival = receiver.state.lastArrival;
    await waitRecorded(db, ids);
    const cpu = await sampler.stop();
    // Stragglers (a duplicate would arrive now).
    await sleep(1_000);
    const final = await finalState(db, ids);

    // Per message: arrival - created_at; stages from the rows.
    const firstCommit = Math.min(...inserted.messages.map((m) => m.createdMs));
    const latencies = [];
    const toDispatch = [];
    const dispatchToArrival = [];
    const dispatchedTimes = [];
    const perInstance = {};
    for (const message of inserted.messages) {
      const arrivals = receiver.state.arrivals.get(message.id);
      if (!arrivals) continue;
      latencies.push(arrivals[0] - message.createdMs);
      const stage = final.stages.get(message.id);
      if (stage && stage.dispatched_ms) {
        toDispatch.push(stage.dispatched_ms - message.createdMs);
        dispatchToArrival.push(arrivals[0] - stage.dispatched_ms);
        dispatchedTimes.push(stage.dispatched_ms);
        const pid = Number(String(stage.dispatched_by).split(':')[1]);
        const index = apis.findIndex((proc) => proc.child.pid === pid);
        const name = index === -1 ? String(stage.dispatched_by) : apis[index].name;
        perInstance[name] = (perInstance[name] || 0) + 1;
      }
    }
    const delivered = latencies.length;
    const seconds = (lastArrival - firstCommit) / 1000;
    const lastDispatch = dispatchedTimes.length ? Math.max(...dispatchedTimes) : null;
    const firstDispatch = dispatchedTimes.length ? Math.min(...dispatchedTimes) : null;
    const arrivalsForIds = ids
      .map((id) => receiver.state.arrivals.get(id))
      .filter(Boolean)
      .map((a) => a[0]);
    const firstArrival = Math.min(...arrivalsForIds);
    const duplicates = receiver.state.duplicates;
    const badSignatures = receiver.state.badSignatures;
    const received = {
      requests: receiver.state.requests,
      missingKeys: receiver.state.missingKeys,
      badSignatureSamples: receiver.state.badSignatureSamples,
    };
    const split = cpuSplit(cpu);
    const stages = {
      insertSeconds: round((insertEnded - insertStarted) / 1000, 3),
      insertPerSecond: round(options.messages / ((insertEnded - insertStarted) / 1000), 1),
      commitAfterLastCreatedMs: latencySummary(inserted.commitGapsMs),
      dispatchSeconds: lastDispatch ? round((lastDispatch - firstCommit) / 1000, 3) : null,
      dispatchPerSecond: lastDispatch
        ? round(dispatchedTimes.length / ((lastDispatch - firstCommit) / 1000), 1)
        : null,
      deliverySeconds: round((lastArrival - firstArrival) / 1000, 3),
      deliveryPerSecond: round(delivered / ((lastArrival - firstArrival) / 1000), 1),
      firstDispatchAfterFirstCommitMs: firstDispatch ? round(firstDispatch - firstCommit) : null,
      createdToDispatchedMs: latencySummary(toDispatch),
      dispatchedToArrivalMs: latencySummary(dispatchToArrival),
      dispatchedByInstance: perInstance,
    };

    // Stop the API(s), then the ceilings on a quiet machine.
    log('stopping the API process(es)');
    const exits = [];
    for (const proc of apis) exits.push(await children.stop(proc));
    const apiLogs = apis.map((proc, i) => ({
      name: proc.name,
      ...logSince(proc, apiLogBefore[i]),
    }));

    log(
      `HTTP ceiling: ${options.messages} signed POSTs, ` +
        `${WORKER_CONCURRENCY * options.instances} in flight`,
    );
    const payload = variants[0].payload;
    const http = await httpCeiling(receiver, admin, endpoint.secret, payload, options).catch(
      (error) => ({ skipped: `the HTTP ceiling failed: ${error.message}` }),
    );
    let pgbench = { skipped: '--no-pgbench' };
    if (options.pgbench) {
      pgbench = await pgbenchCeilings(options, urls, admin, {
        customerId: customer.id,
        bookingId: booking.id,
        endpointId: endpoint.id,
        payload,
      }).catch((error) => ({ skipped: `the pgbench ceilings failed: ${error.message}` }));
    }

    const messagesPerSecond = round(delivered / seconds, 1);
    const invariants = [];
    if (duplicates > 0) invariants.push(`${duplicates} duplicate deliveries at the receiver`);
    if (badSignatures > 0) invariants.push(`${badSignatures} requests with a bad signature`);
    if (delivered !== options.messages) {
      invariants.push(`${delivered} of ${options.messages} messages reached the receiver`);
    }
    if (final.inApp !== options.messages) {
      invariants.push(`${final.inApp} in-app notifications for ${options.messages} messages`);
    }
    if ((final.outbox.sent || 0) !== options.messages) {
      invariants.push(`outbox not all sent: ${JSON.stringify(final.outbox)}`);
    }
    if (
      (final.deliveries.delivered || 0) !== options.messages ||
      final.deliveryRows !== options.messages
    ) {
      invariants.push(`deliveries not all delivered: ${JSON.stringify(final.deliveries)}`);
    }
    const anomalies = [];
    if (split.other !== null && split.other > BUSY_MACHINE_CORES) {
      anomalies.push(
        `other processes used ${split.other} cores during the run: the machine was shared`,
      );
    }
    if (final.attempts !== options.messages) {
      anomalies.push(
        `${final.attempts} delivery attempts recorded for ${options.messages} deliveries`,
      );
    }
    for (const entry of apiLogs) {
      if (entry.levels.error + entry.levels.fatal > 0) {
        anomalies.push(`${entry.name}: ${entry.levels.error + entry.levels.fatal} error log lines`);
      }
    }
    if (http.failed) anomalies.push(`HTTP ceiling: ${http.failed} failed requests`);
    for (const part of ['dispatch', 'full']) {
      const problems = pgbench[part]?.problems;
      if (problems && problems.length) anomalies.push(`pgbench ${part}: ${problems.join('; ')}`);
    }

    Object.assign(report, {
      benchmark: 'notify',
      messages: options.messages,
      instances: options.instances,
      batch: options.batch,
      machine: {
        cpus: os.cpus().length,
        cpuModel: (os.cpus()[0] || {}).model || 'unknown',
        memoryGiB: round(os.totalmem() / 2 ** 30, 1),
        node: process.version,
      },
      apiSettings: {
        dbPoolSize: Number(process.env.DB_POOL_SIZE || 10),
        notifyBatchSize: Number(process.env.NOTIFY_BATCH_SIZE || 100),
        deliveryConcurrencyPerInstance: WORKER_CONCURRENCY,
        email: 'off (SMTP_URL unset)',
      },
      warmupRequests,
      messagesPerSecond,
      seconds: round(seconds, 3),
      delivered,
      latencyMs: latencySummary(latencies),
      duplicates,
      badSignatures,
      badSignatureSamples: received.badSignatureSamples,
      missingIdempotencyKeys: received.missingKeys,
      receiverRequests: received.requests,
      stages,
      final: {
        outbox: final.outbox,
        deliveries: final.deliveries,
        inAppNotifications: final.inApp,
        deliveryRows: final.deliveryRows,
        attempts: final.attempts,
      },
      cpu,
      cpuSplit: split,
      cpuMsPerMessage: cpuMsPerMessage(cpu, delivered),
      invariantViolations: invariants,
      anomalies,
      logs: apiLogs,
      exits,
    });
    report.ceiling = {
      http,
      pgbench,
      ratioToHttp: http.requestsPerSecond
        ? round(messagesPerSecond / http.requestsPerSecond, 3)
        : null,
      ratioToPgbenchDispatch: pgbench.dispatch?.messagesPerSecond
        ? round(messagesPerSecond / pgbench.dispatch.messagesPerSecond, 3)
        : null,
      ratioToPgbenchFull: pgbench.full?.messagesPerSecond
        ? round(messagesPerSecond / pgbench.full.messagesPerSecond, 3)
        : null,
    };
    report.limitedBy = limitedBy(cpu, os.cpus().length, split, report);
    report.ok =
      invariants.length === 0 && report.badSignatures === 0 && report.missingIdempotencyKeys === 0;
    return report;
  } catch (error) {
    for (const proc of apis) {
      if (proc.tail.length > 0) log(`last ${proc.name} output:\n${proc.tail.join('\n')}`);
    }
    throw error;
  } finally {
    await setupAgent.destroy().catch(() => undefined);
    await db.end().catch(() => undefined);
    await children.stopAll();
    await receiver.close().catch(() => undefined);
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
  return summary.n === 0 ? '-' : `${summary.p50} / ${summary.p99} ms (max ${summary.max})`;
}

function statuses(counts) {
  const entries = Object.entries(counts);
  return entries.length ? entries.map(([k, n]) => `${k} ${n}`).join(', ') : 'none';
}

function printReport(report) {
  const s = report.stages;
  const c = report.ceiling;
  const rows = [
    [
      'messages / API instances / insert batch',
      `${report.messages} / ${report.instances} / ${report.batch}`,
    ],
    null,
    ['messages/s (first commit -> last delivery)', report.messagesPerSecond],
    ['run time', `${report.seconds} s`],
    ['latency p50 / p99 (commit -> receiver)', ms(report.latencyMs)],
    ['duplicates seen (same Idempotency-Key)', report.duplicates],
    ['bad signatures / missing keys', `${report.badSignatures} / ${report.missingIdempotencyKeys}`],
    ['outbox rows at the end', statuses(report.final.outbox)],
    ['deliveries at the end', statuses(report.final.deliveries)],
    ['in-app notifications written', report.final.inAppNotifications],
    ['delivery attempts recorded', report.final.attempts],
    null,
    ['inserts', `${s.insertSeconds} s (${s.insertPerSecond} messages/s)`],
    [
      'fan-out (dispatched_at)',
      `${s.dispatchSeconds} s after first commit (${s.dispatchPerSecond}/s)`,
    ],
    ['deliveries (arrivals)', `${s.deliverySeconds} s first to last (${s.deliveryPerSecond}/s)`],
    ['created -> dispatched p50 / p99', ms(s.createdToDispatchedMs)],
    ['dispatched -> arrival p50 / p99', ms(s.dispatchedToArrivalMs)],
    ['fanned out by', statuses(s.dispatchedByInstance)],
    null,
  ];
  for (const [name, group] of Object.entries(report.cpu.groups).sort(
    (a, b) => b[1].cores - a[1].cores,
  )) {
    rows.push([
      `CPU: ${name}`,
      `${group.cores.toFixed(2)} cores, ${report.cpuMsPerMessage[name]} ms/message`,
    ]);
  }
  rows.push(['CPU: other processes (not ours)', `${report.cpu.otherCores ?? '-'} cores`]);
  rows.push([
    'CPU: whole machine',
    `${report.cpu.machineCores ?? '-'} of ${report.machine.cpus} cores`,
  ]);
  rows.push(null);
  if (c.http.requestsPerSecond) {
    rows.push([
      `HTTP ceiling (${c.http.concurrency} in flight, keep-alive)`,
      `${c.http.requestsPerSecond} requests/s`,
    ]);
    rows.push(['messages/s / HTTP ceiling', c.ratioToHttp]);
  } else rows.push(['HTTP ceiling', 'skipped']);
  if (c.pgbench.dispatch) {
    rows.push([
      `pgbench: fan-out SQL, ${c.pgbench.dispatch.clients} client(s)`,
      `${c.pgbench.dispatch.messagesPerSecond} messages/s (${c.pgbench.dispatch.latencyAverageMs} ms each)`,
    ]);
    rows.push(['messages/s / pgbench fan-out', c.ratioToPgbenchDispatch]);
    rows.push([
      `pgbench: all per-message SQL, ${c.pgbench.full.clients} clients`,
      `${c.pgbench.full.messagesPerSecond} messages/s (PostgreSQL ${c.pgbench.full.postgresCores} cores)`,
    ]);
    rows.push(['messages/s / pgbench all SQL', c.ratioToPgbenchFull]);
  } else rows.push(['pgbench ceilings', 'skipped']);
  const out = [
    '',
    `Notifications: ${report.messages} outbox messages -> webhooks at a local receiver, ` +
      `${report.instances} API instance(s)`,
    ...table([null, ...rows, null]),
  ];
  if (c.http.skipped) out.push(`HTTP ceiling: ${c.http.skipped}`);
  if (c.pgbench.skipped) out.push(`pgbench: ${c.pgbench.skipped}`);
  out.push(`Limited by: ${report.limitedBy}.`);
  for (const violation of report.invariantViolations) out.push(`! invariant: ${violation}`);
  for (const note of report.anomalies) out.push(`! ${note}`);
  for (const entry of report.logs) {
    const messages = Object.entries(entry.messages);
    if (messages.length === 0) continue;
    out.push(`${entry.name} log (warn and above):`);
    for (const [message, n] of messages) out.push(`  ${String(n).padStart(5)}  ${message}`);
  }
  out.push(report.ok ? 'OK' : 'FAILED');
  process.stdout.write(`${out.join('\n')}\n`);
}

// ---------------------------------------------------------------------------------------------

async function main() {
  const options = parseArgs(process.argv.slice(2));
  if (!existsSync(API_MAIN))
    throw new BenchError(`${API_MAIN} is missing: run \`npm run build\` first`);
  const urls = databaseUrls();
  const redis = localRedisUrl();
  await requireRedis(redis);
  let report;
  try {
    report = await run(options, urls, redis);
  } finally {
    await withTimeout(dropDatabase(urls.admin), 30_000, 'dropping the bench database').catch(
      (error) => log(`could not drop ${DATABASE}: ${error.message}`),
    );
  }
  printReport(report);
  if (options.json) process.stdout.write(`${JSON.stringify(report)}\n`);
  return report.ok ? 0 : 1;
}

runBenchmarkMain({
  benchmark: 'notify',
  main,
  children,
  log,
  totalMs: TIMEOUTS.total + 5 * 60_000,
  cleanUp: () => dropDatabase(databaseUrls().admin),
});
