/*
 * Notifications: outbox messages → signed webhooks at a receiver in this process, per second.
 *
 *   npm run bench:notify -- [--messages 10000] [--instances 1] [--batch 100] [--json] [--no-pgbench]
 *
 * On a fresh database, --instances built APIs (behind a PgCountingProxy) deliver --messages outbox
 * rows, inserted by SQL in --batch-row transactions with enqueue's pg_notify, to one webhook
 * endpoint (after a real hold as warm-up). Measured: messages/s (first commit → last arrival),
 * commit → arrival p50/p99, stages, PostgreSQL statements per message, CPU split; exit 1 on any
 * duplicate, lost message, bad signature, or an end state not all sent/delivered with one in-app
 * row each. Ceilings, APIs stopped: HTTP only (a Node child posting the same signed bodies), and
 * pgbench of the minimal SQL (claim a batch, mark it sent). See docs/benchmarks.md.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from 'pg';
import { Agent, request } from 'undici';
import { signWebhook } from '../../apps/api/src/common/http/webhook-signature';
import { DELIVERY_CONCURRENCY } from '../../apps/api/src/modules/notification/delivery-worker.service';
import { OUTBOX_CLAIM_BATCH, OUTBOX_SCRIPT } from '../support/bench/minimal-sql';
import { OutboundWebhookReceiver } from '../support/outbound-webhook-receiver';
import type { PgCountingProxy } from '../support/pg-counting-proxy';
import * as http from '../support/bench/bench-http';
import * as pg from '../support/bench/bench-postgres';
import { BenchRun } from '../support/bench/bench-run';
import type { Child } from '../support/bench/child-processes';
import * as cli from '../support/bench/cli';
import type { CpuReport } from '../support/bench/proc-stats';
import { fmt, printReport, type TableRow } from '../support/bench/report';
import { latencySummary, mapLimit, ratio, round, subtract } from '../support/bench/stats';
import { groupSampler } from './stream/cpu-groups';

const DATABASE = 'seatlock_bench_notify';
/** DeliveryWorkerService's sends in flight per instance; the webhook channel's Agent size. */
const [WORKER_CONCURRENCY, WORKER_CONNECTIONS] = [DELIVERY_CONCURRENCY, 64];
/** The dispatcher's claim (NOTIFY_BATCH_SIZE's default); the SQL ceilings' pgbench clients. */
const [CLAIM_BATCH, SQL_CLIENTS] = [OUTBOX_CLAIM_BATCH, 8];
const TOPICS = ['held', 'confirmed', 'released', 'expired', 'cancelled'];
/** Set in the HTTP ceiling's child, which then runs this file as that client (httpClient). */
const HTTP_JOB = 'NOTIFY_BENCH_HTTP_JOB';
const run = new BenchRun('notify');
const { log, children } = run;

const USAGE = `Usage: npm run bench:notify -- [options]

  --messages N   outbox messages to deliver (default 10000)
  --instances N  API processes on the database, all dispatching (default 1)
  --batch N      messages per committed insert transaction (default 100)
  --json         also print one JSON object as the last line of stdout
  --no-pgbench   skip the pgbench ceilings`;

function parseOptions() {
  const [text, flag] = [{ type: 'string' }, { type: 'boolean' }] as const;
  const values = cli.parseBenchArgs(
    { messages: text, instances: text, batch: text, json: flag, 'no-pgbench': flag },
    USAGE,
  );
  const int = (name: 'messages' | 'instances' | 'batch', fallback: number, max: number) =>
    Math.trunc(cli.numberOption(name, values[name], fallback, 1, max));
  return {
    messages: int('messages', 10_000, 1_000_000),
    instances: int('instances', 1, 8),
    batch: int('batch', 100, 10_000),
    json: values.json === true,
    pgbench: values['no-pgbench'] !== true,
  };
}
type Options = ReturnType<typeof parseOptions>;

interface Stack {
  options: Options;
  dbUrl: string;
  /** On the postgres database: pg_stat_activity for the CPU split. */
  admin: Client;
  /** On the bench database, not through the proxy. */
  db: Client;
  receiver: OutboundWebhookReceiver;
  proxy: PgCountingProxy;
  apis: Child[];
}

async function post<T>(api: string, route: string, token: string, body: unknown): Promise<T> {
  return http.expectStatus(await http.call<T>(api, 'POST', route, { token, body }), 201, route);
}

/** A customer, one endpoint for every event, and a real hold whose webhook is the warm-up. */
async function setUp(api: string, adminToken: string, receiver: OutboundWebhookReceiver) {
  const tag = `notify-${randomBytes(4).toString('hex')}`;
  const [{ id: customerId, token }] = await http.registerCustomers(api, 1, tag);
  const endpoint = await post<{ id: string; secret: string }>(api, '/webhook-endpoints', token, {
    url: receiver.url,
    events: ['*'],
  });
  receiver.secret = endpoint.secret;
  const event = await http.createEvent(api, adminToken, 'Notify bench', 1, 4, 4_200);
  const hold = { eventId: event.id, seatIds: event.labels.slice(0, 2) };
  const booking = await post<{ id: string }>(api, '/bookings', token, hold);
  await receiver.waitFor("the hold's webhook", (requests) => requests.length > 0, 30_000);
  await sleep(500); // a second request for the warm-up message would come now
  receiver.reset();
  // Every message carries the real booking, its status matching the topic.
  const payloads = TOPICS.map((status) => JSON.stringify({ booking: { ...booking, status } }));
  return { customerId, bookingId: booking.id, endpoint, payloads };
}
type Setup = Awaited<ReturnType<typeof setUp>>;

/** Wall-clock milliseconds, sub-millisecond, comparable with PostgreSQL's clock_timestamp(). */
const wallMs = (): number => performance.timeOrigin + performance.now();

/** A batch in enqueue's shape: the rows and pg_notify in one statement (notified on commit). */
const INSERT_BATCH = `WITH inserted AS (
  INSERT INTO outbox_messages (id, topic, customer_id, aggregate_id, payload)
  SELECT gen_random_uuid(), 'booking.' || t.status, $1, $2, t.payload
    FROM unnest($3::text[], $4::jsonb[]) WITH ORDINALITY AS t(status, payload, n) ORDER BY t.n
  RETURNING id, (extract(epoch FROM created_at) * 1000)::float8 AS created_ms
) SELECT id, created_ms, pg_notify('outbox', '') FROM inserted`;

/** Committed batches one after the other; answers each message's created_at (wall ms). */
async function insertMessages({ db, options }: Stack, setup: Setup) {
  const created = new Map<string, number>();
  for (let done = 0; done < options.messages; done += options.batch) {
    const n = Math.min(options.batch, options.messages - done);
    const kinds = Array.from({ length: n }, (_, i) => (done + i) % TOPICS.length);
    const topics = kinds.map((k) => TOPICS[k]);
    const params = [setup.customerId, setup.bookingId, topics, kinds.map((k) => setup.payloads[k])];
    const { rows } = await db.query<{ id: string; created_ms: number }>(INSERT_BATCH, params);
    for (const row of rows) created.set(row.id, row.created_ms);
  }
  return created;
}

/** Each message's first arrival at the receiver, once all have arrived. */
async function waitDelivered({ receiver, apis }: Stack, ids: ReadonlySet<string>) {
  const first = new Map<string, number>();
  for (let read = 0, progressAt = Date.now(); first.size < ids.size; await sleep(50)) {
    if (receiver.requests.length > read) progressAt = Date.now();
    for (const { idempotencyKey: key, receivedAt } of receiver.requests.slice(read)) {
      if (key && ids.has(key) && !first.has(key)) first.set(key, receivedAt);
    }
    read = receiver.requests.length;
    const dead = apis.find((api) => api.hasExited);
    if (dead) throw new cli.BenchError(`${dead.name} exited mid-run:\n${dead.tail.join('\n')}`);
    if (Date.now() - progressAt > 60_000) {
      throw new cli.BenchError(`stalled: ${first.size} of ${ids.size} messages delivered`);
    }
  }
  return first;
}

const END_STATE = `SELECT
  (SELECT json_object_agg(status, n) FROM (SELECT status, count(*)::int AS n FROM outbox_messages
     WHERE id = ANY($1) GROUP BY status) s) AS outbox,
  (SELECT json_object_agg(status, n) FROM (SELECT status, count(*)::int AS n
     FROM notification_deliveries WHERE message_id = ANY($1) GROUP BY status) s) AS deliveries,
  (SELECT count(*)::int FROM notifications WHERE message_id = ANY($1)) AS "inApp",
  (SELECT count(*)::int FROM delivery_attempts a JOIN notification_deliveries d
     ON d.id = a.delivery_id WHERE d.message_id = ANY($1)) AS attempts`;
type Counts = Record<string, number>;
type EndState = Record<'outbox' | 'deliveries', Counts | null> &
  Record<'inApp' | 'attempts', number>;

/** The rows once settled (all sent, no delivery pending: the worker records after the 200). */
async function endState(db: Client, ids: string[]): Promise<EndState> {
  for (const deadline = Date.now() + 60_000; ; await sleep(200)) {
    const [end] = (await db.query<EndState>(END_STATE, [ids])).rows;
    const settled = end.outbox?.sent === ids.length && !end.deliveries?.pending;
    if (settled || Date.now() > deadline) return end;
  }
}

type Times = Map<string, number>;
type Dispatched = { id: string; at: number };
const lowest = (v: Iterable<number>) => [...v].reduce((a, b) => Math.min(a, b), Infinity);
const highest = (v: Iterable<number>) => [...v].reduce((a, b) => Math.max(a, b), -Infinity);

/** Rates and latencies from created_at, dispatched_at (the fan-out) and the arrival. */
function stageFigures(created: Times, arrived: Times, dispatched: Dispatched[]) {
  const since = (times: Times, id: string, at: number) => at - (times.get(id) ?? at);
  const [firstCommit, firstArrival] = [created, arrived].map((times) => lowest(times.values()));
  const lastArrival = highest(arrived.values());
  const perSecond = (n: number, from: number, to: number) => round((n * 1000) / (to - from));
  const lastDispatch = highest(dispatched.map((row) => row.at));
  return {
    seconds: round((lastArrival - firstCommit) / 1000, 3),
    messagesPerSecond: perSecond(arrived.size, firstCommit, lastArrival),
    latencyMs: latencySummary([...arrived].map(([id, at]) => since(created, id, at))),
    dispatchPerSecond: perSecond(dispatched.length, firstCommit, lastDispatch),
    deliveryPerSecond: perSecond(arrived.size, firstArrival, lastArrival),
    createdToDispatchedMs: latencySummary(dispatched.map((r) => since(created, r.id, r.at))),
    dispatchedToArrivalMs: latencySummary(dispatched.map((r) => -since(arrived, r.id, r.at))),
  };
}

/**
 * CPU by group: `named` processes, this one, redis-server, pgbench, and PostgreSQL's backends of
 * the bench database apart from its server processes; other databases' backends are "other".
 */
function cpuSampler(admin: Client, named: ReadonlyMap<number, string>) {
  return groupSampler({
    database: pg.benchDatabaseName(DATABASE),
    self: 'bench: inserts, receiver, proxy',
    pids: Object.fromEntries(named),
    programs: ['redis-server', 'pgbench'],
    server: 'PostgreSQL: server processes',
    admin,
  });
}

/** Cores used by the groups whose name starts with `prefix`. */
function cores(cpu: CpuReport, prefix: string): number | null {
  const groups = Object.entries(cpu.groups).filter(([name]) => name.startsWith(prefix));
  const total = groups.reduce((sum, [, group]) => sum + (group.cores ?? 0), 0);
  return round(total, 2);
}

type HttpJob = { url: string; secret: string; payload: string; total: number; concurrency: number };

/** The HTTP ceiling's child: `total` signed POSTs, `concurrency` in flight, as the worker sends. */
async function httpClient(job: HttpJob): Promise<void> {
  const agent = new Agent({ connections: WORKER_CONNECTIONS });
  const data: unknown = JSON.parse(job.payload);
  let ok = 0;
  const started = performance.now();
  await mapLimit(Array.from({ length: job.total }), job.concurrency, async () => {
    const id = randomUUID();
    const body = JSON.stringify({ id, type: 'booking.held', createdAt: new Date(), data });
    const headers = {
      'content-type': 'application/json',
      'user-agent': 'Seatlock-Webhooks/1.0',
      'seatlock-signature': signWebhook(job.secret, body),
      'idempotency-key': id,
    };
    const status = await request(job.url, { method: 'POST', dispatcher: agent, body, headers })
      .then(async (response) => (await response.body.dump(), response.statusCode))
      .catch(() => 0);
    if (status === 200) ok += 1;
  });
  const seconds = (performance.now() - started) / 1000;
  await agent.close();
  process.stdout.write(`${JSON.stringify({ ok, failed: job.total - ok, seconds })}\n`);
}

/** The same signed bodies to the same receiver from a Node child, with the APIs stopped. */
async function httpCeiling({ receiver, options, admin }: Stack, setup: Setup) {
  receiver.reset();
  const concurrency = WORKER_CONCURRENCY * options.instances;
  const { secret } = setup.endpoint;
  const job = { url: receiver.url, secret, payload: setup.payloads[0], total: options.messages };
  log(`HTTP ceiling: ${job.total} signed POSTs, ${concurrency} in flight`);
  const env = { ...process.env, [HTTP_JOB]: JSON.stringify({ ...job, concurrency }) };
  // process.execArgv carries tsx's loader, so that the child can require this .ts file.
  const client = children.node('HTTP client', __filename, env, process.execArgv);
  const closed = new Promise((done) => client.child.once('close', done));
  const sampler = cpuSampler(admin, new Map([[client.pid, 'HTTP client (node)']]));
  await sampler.start();
  await cli.withTimeout(closed, 300_000, 'the HTTP ceiling client');
  const cpu = await sampler.stop();
  const last = client.output.trim().split('\n').pop() ?? '';
  if (!last.startsWith('{')) throw new cli.BenchError(`HTTP client:\n${client.tail.join('\n')}`);
  const result = JSON.parse(last) as { ok: number; failed: number; seconds: number };
  return {
    ...{ ...result, seconds: round(result.seconds, 3), concurrency },
    messagesPerSecond: round(result.ok / result.seconds),
    badSignatures: receiver.requests.filter((r) => r.signatureProblem !== null).length,
    duplicates: receiver.keys().duplicates,
    clientCores: cores(cpu, 'HTTP client'),
    receiverCores: cores(cpu, 'bench'),
  };
}

const PENDING_ROWS = `INSERT INTO outbox_messages (id, topic, customer_id, aggregate_id, payload)
  SELECT lpad(to_hex((c + 1)::bigint * 1000000000 + s), 32, '0')::uuid, 'booking.held', $1, $2, $3
    FROM generate_series(0, $4::int - 1) c, generate_series(1, $5::int) s`;
const DONE = `SELECT (SELECT count(*) FROM outbox_messages WHERE status = 'sent')::int AS sent,
  (SELECT count(*) FROM notification_deliveries WHERE status = 'delivered')::int AS delivered`;

/**
 * pgbench of OUTBOX_SCRIPT, SQL_CLIENTS clients × `transactions` claims, on pending outbox rows made
 * for it; fails unless it sent them all.
 */
async function sqlCeiling({ db, admin, dbUrl }: Stack, setup: Setup, transactions: number) {
  const perClient = transactions * CLAIM_BATCH;
  await db.query(
    'TRUNCATE outbox_messages, notification_deliveries, delivery_attempts, notifications',
  );
  const { customerId, bookingId, payloads } = setup;
  await db.query(PENDING_ROWS, [customerId, bookingId, payloads[0], SQL_CLIENTS, perClient]);
  await db.query('VACUUM ANALYZE');
  const sampler = cpuSampler(admin, new Map());
  await sampler.start();
  const options = { url: dbUrl, script: OUTBOX_SCRIPT, clients: SQL_CLIENTS, seconds: 240 };
  const result = await pg.runPgbench(children, { ...options, transactions });
  const postgresCores = cores(await sampler.stop(), 'PostgreSQL');
  const [done] = (await db.query<{ sent: number; delivered: number }>(DONE)).rows;
  const rows = SQL_CLIENTS * perClient;
  if (done.sent !== rows || done.delivered !== 0) {
    throw new cli.BenchError(`pgbench sent ${done.sent}, delivered ${done.delivered} of ${rows}`);
  }
  const messagesPerSecond = round((result.tps ?? 0) * CLAIM_BATCH);
  return { ...result, transactions, messagesPerSecond, postgresCores };
}

type Skipped = { skipped: string };
const skip =
  (what: string) =>
  (error: Error): Skipped => ({ skipped: `${what}: ${error.message}` });
const rate = (c: { messagesPerSecond: number | null } | Skipped) =>
  'skipped' in c ? null : c.messagesPerSecond;

/** The ceilings, APIs stopped: HTTP only and the minimal SQL. */
async function ceilings(stack: Stack, setup: Setup) {
  const { pgbench } = stack.options;
  const http = await httpCeiling(stack, setup).catch(skip('the HTTP ceiling failed'));
  const why = !pgbench ? '--no-pgbench' : pg.findPgbench() ? null : 'no pgbench on this machine';
  if (why) return { http, minimalSql: { skipped: why } };
  // 100,000 pending rows: a table fuller than the run's, and a run of a few seconds.
  const claims = Math.ceil(100_000 / (SQL_CLIENTS * CLAIM_BATCH));
  log(`pgbench: minimal SQL, ${SQL_CLIENTS} clients × ${claims} claims of ${CLAIM_BATCH}`);
  const minimalSql = await sqlCeiling(stack, setup, claims).catch(skip('minimal SQL failed'));
  return { http, minimalSql };
}

const DISPATCHED = `SELECT id, (extract(epoch FROM dispatched_at) * 1000)::float8 AS at
  FROM outbox_messages WHERE id = ANY($1) AND dispatched_at IS NOT NULL`;

/** The measured run: insert, wait for every delivery and for the rows to settle. */
async function measure(stack: Stack, setup: Setup) {
  const { db, receiver, proxy, apis } = stack;
  const sampler = cpuSampler(stack.admin, new Map(apis.map((api) => [api.pid, api.name])));
  const wireBefore = proxy.counts();
  await sampler.start();
  log(`inserting ${stack.options.messages} messages in batches of ${stack.options.batch}`);
  const started = wallMs();
  const created = await insertMessages(stack, setup);
  const insertPerSecond = round((created.size * 1000) / (wallMs() - started));
  const ids = [...created.keys()];
  const arrived = await waitDelivered(stack, new Set(ids));
  const end = await endState(db, ids);
  const cpu = await sampler.stop();
  const wire = subtract({ ...proxy.counts() }, { ...wireBefore });
  await sleep(1_000); // a duplicate would arrive now
  const { rows } = await db.query<Dispatched>(DISPATCHED, [ids]);
  const received = {
    requests: receiver.requests.length,
    duplicates: receiver.keys().duplicates,
    badSignatures: receiver.requests.filter((r) => r.signatureProblem !== null).length,
    missingKeys: receiver.requests.filter((r) => !r.idempotencyKey).length,
  };
  const stages = stageFigures(created, arrived, rows);
  return { ...stages, insertPerSecond, delivered: arrived.size, end, wire, cpu, received };
}
type Measured = Awaited<ReturnType<typeof measure>>;
type Ceilings = Awaited<ReturnType<typeof ceilings>>;

/** The invariants (exit 1 when one fails), notes, and the JSON report. */
function buildReport(options: Options, m: Measured, c: Ceilings, notes: string[]) {
  const { messages: n, instances } = options;
  const [lost, { duplicates, badSignatures, missingKeys }] = [n - m.delivered, m.received];
  const all = (counts: Counts | null, status: string) => counts?.[status] === n;
  const violations = (
    [
      [duplicates > 0, `${duplicates} duplicate deliveries at the receiver`],
      [lost > 0, `${lost} of ${n} messages never reached the receiver`],
      [badSignatures + missingKeys > 0, `${badSignatures} bad signatures, ${missingKeys} no key`],
      [m.end.inApp !== n, `${m.end.inApp} in-app notifications for ${n} messages`],
      [!all(m.end.outbox, 'sent'), `outbox not all sent: ${JSON.stringify(m.end.outbox)}`],
      [!all(m.end.deliveries, 'delivered'), `deliveries: ${JSON.stringify(m.end.deliveries)}`],
    ] as const
  ).flatMap(([failed, what]) => (failed ? [what] : []));
  if ((m.cpu.otherCores ?? 0) > 0.25) notes.push(`other processes used ${m.cpu.otherCores} cores`);
  if (m.end.attempts !== n) notes.push(`${m.end.attempts} delivery attempts for ${n} messages`);
  for (const [name, v] of Object.entries(c))
    if ('skipped' in v) notes.push(`${name}: ${v.skipped}`);
  const [httpCeiling, minimalSqlCeiling] = [c.http, c.minimalSql].map(rate);
  const { messagesPerSecond, latencyMs, cpu, ...measured } = m;
  const summary = {
    ...{ messages: n, instances, messagesPerSecond, duplicates, lost },
    latencyMs: { p50: latencyMs.p50, p99: latencyMs.p99 },
    statementsPerMessage: round(m.wire.statements / n, 2),
    ...{ httpCeiling, minimalSqlCeiling },
    vsHttp: ratio(messagesPerSecond, httpCeiling),
    vsMinimalSql: ratio(messagesPerSecond, minimalSqlCeiling),
  };
  const split = Object.fromEntries(['API', 'PostgreSQL', 'bench'].map((g) => [g, cores(cpu, g)]));
  const cpuSplit = { ...split, other: cpu.otherCores, machine: cpu.machineCores };
  const details = { ...measured, latencyMs, cpu: cpuSplit, ceilings: c };
  return { benchmark: 'notify', ok: violations.length === 0, summary, details, violations, notes };
}
type Report = ReturnType<typeof buildReport>;

type Row = TableRow | [figure: string, measured: string | number, goal?: string];

function tableRows({ summary: s, details: m }: Report, cpu: CpuReport): TableRow[] {
  const ms = (l: Record<'p50' | 'p99', number | null>) => `${fmt(l.p50, 1)} / ${fmt(l.p99, 1)} ms`;
  const vs = (figure: string, ceiling: number | null): TableRow => {
    const versus = ratio(s.messagesPerSecond, ceiling);
    return { figure, measured: fmt(s.messagesPerSecond), ceiling: fmt(ceiling), ratio: versus };
  };
  const rates = [m.insertPerSecond, m.dispatchPerSecond, m.deliveryPerSecond].map((v) => fmt(v));
  const groups = Object.entries(cpu.groups)
    .sort((a, b) => (b[1].cores ?? 0) - (a[1].cores ?? 0))
    .map(([name, g]): Row => [`CPU: ${name}`, fmt(g.cores, 2)]);
  const rows: Row[] = [
    vs(`messages/s, ${s.instances} API vs HTTP only`, s.httpCeiling),
    vs('messages/s vs minimal SQL (claim, mark sent)', s.minimalSqlCeiling),
    ['latency p50 / p99, commit -> receiver', ms(s.latencyMs)],
    ['PostgreSQL statements / message', fmt(s.statementsPerMessage, 2)],
    ['duplicates / lost', `${s.duplicates} / ${s.lost}`, '0 / 0'],
    { figure: '-' },
    ['inserted / fanned out / delivered per s', rates.join(' / ')],
    ['created -> dispatched p50 / p99', ms(m.createdToDispatchedMs)],
    ['dispatched -> arrival p50 / p99', ms(m.dispatchedToArrivalMs)],
    ['outbox at the end', JSON.stringify(m.end.outbox), 'all sent'],
    ['deliveries at the end', JSON.stringify(m.end.deliveries), 'all delivered'],
    ['in-app notifications', m.end.inApp, String(s.messages)],
    { figure: '-' },
    ...groups,
    ['CPU: other processes / machine', `${fmt(cpu.otherCores, 2)} / ${fmt(cpu.machineCores, 2)}`],
  ];
  return rows.map((r) => (Array.isArray(r) ? { figure: r[0], measured: r[1], goal: r[2] } : r));
}

/** A client of the bench database (or the postgres one), closed at the end of the run. */
async function client(url: string): Promise<Client> {
  const db = new Client({ connectionString: url });
  db.on('error', (e) => log(`PostgreSQL: ${e.message}`));
  run.track({ stop: () => db.end() });
  await db.connect();
  return db;
}

/** The stack, the measured run with the APIs, then the ceilings with the APIs stopped. */
async function measureAll(options: Options) {
  const dbUrl = await run.freshDatabase(DATABASE);
  const { url: redis } = await run.redis();
  const receiver = await OutboundWebhookReceiver.start();
  run.track({ stop: () => receiver.close() });
  const proxy = await run.countingProxy(dbUrl);
  const [admin, db] = [await client(pg.databaseUrl('postgres')), await client(dbUrl)];
  const stack: Stack = { options, dbUrl, admin, db, receiver, proxy, apis: [] };
  for (let i = 0; i < options.instances; i += 1) {
    const name = options.instances === 1 ? 'API' : `API #${i + 1}`;
    // Email off: the webhook path alone is measured. The first one migrates.
    const env = { SMTP_URL: undefined, MIGRATIONS_RUN: String(i === 0) };
    const apiEnv = { ...env, WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'true' };
    const database = proxy.urlFor(dbUrl);
    stack.apis.push(await run.startApi({ name, database, redis, env: apiEnv }));
  }
  const setup = await setUp(stack.apis[0].url, run.adminToken, receiver);
  const logsBefore = stack.apis.map((api) => api.snapshot());
  const measured = await measure(stack, setup);
  log('stopping the API process(es)');
  for (const api of stack.apis) await children.stop(api);
  const notes = stack.apis.flatMap((api, i) => {
    const { levels, messages } = api.logSince(logsBefore[i]);
    return levels.error + levels.fatal > 0 ? [`${api.name}: ${JSON.stringify(messages)}`] : [];
  });
  const report = buildReport(options, measured, await ceilings(stack, setup), notes);
  return { report, cpu: measured.cpu };
}

async function main(): Promise<number> {
  const options = parseOptions();
  const { report, cpu } = await measureAll(options);
  log(`${options.messages} outbox messages -> webhooks, ${options.instances} API instance(s)`);
  const notes = [...report.violations.map((v) => `invariant: ${v}`), ...report.notes];
  const sections = [
    { rows: tableRows(report, cpu), notes },
    { lines: [report.ok ? 'OK' : 'FAILED'] },
  ];
  printReport(sections, options.json ? report : undefined);
  return report.ok ? 0 : 1;
}

const httpJob = process.env[HTTP_JOB];
if (httpJob) {
  // It exits by itself: the orphan guard holds stdin, and so the event loop, open.
  httpClient(JSON.parse(httpJob) as HttpJob).then(
    () => process.exit(0),
    (error: Error) => process.stderr.write(`${error.stack}\n`, () => process.exit(1)),
  );
} else {
  run.main(main, 40 * 60_000);
}
