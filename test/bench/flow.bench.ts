/*
 * Payment flow: complete bookings per second, hold → pay → confirmed, one loop per customer.
 *
 *   npm run bench:flow -- [--customers 64] [--duration 20] [--warmup 3] [--json] [--no-pgbench]
 *
 * The built gateway simulator and API run as children on fresh databases of their own, the API
 * behind a PgCountingProxy. Each customer loops POST /bookings → POST /bookings/{id}/payments on
 * its own connection; a 201 that says anything but held, then captured + confirmed, is an invariant
 * violation. Reported: bookings/s, p50/p99 per step, errors by step and status, PostgreSQL
 * transactions (pg_stat_database), statements and round trips (on the wire) and gateway calls per
 * booking, the CPU split; check:ledger must be clean and match the cycles, else exit 1. Ceilings
 * (pgbench, the API stopped): the minimal durable SQL of a booking, and a replay of the API's own
 * SQL. Uses DATABASE_URL's server and REDIS_URL, both on this machine. More: docs/benchmarks.md.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { cpus } from 'node:os';
import { resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import { Client as PgClient } from 'pg';
import { Client as HttpClient } from 'undici';
import type { checkLedger, LedgerReport } from '../../apps/api/src/ledger/ledger-check';
import { PgCountingProxy } from '../support/pg-counting-proxy';
import { freePort } from '../support/redis-server';
import * as http from '../support/bench/bench-http';
import * as pg from '../support/bench/bench-postgres';
import * as proc from '../support/bench/child-processes';
import * as cli from '../support/bench/cli';
import { MINIMAL_FLOW_SCRIPT } from '../support/bench/minimal-sql';
import { CpuSampler } from '../support/bench/proc-stats';
import { latencySummary, mapLimit, ratio, round } from '../support/bench/stats';
import { fmt, printJson, renderTable, type TableRow } from '../support/bench/table';
import {
  OWN_SQL_FLOW_SCRIPT,
  OWN_SQL_FLOW_TRANSACTIONS,
  ownSqlFlowVariables,
} from './own-sql-flow';

const LEDGER_CHECK = resolve(proc.ROOT, 'dist/apps/api/apps/api/src/ledger/ledger-check.js');
const API_DATABASE = pg.benchDatabaseName('seatlock_bench_flow');
const GATEWAY_DATABASE = pg.benchDatabaseName('seatlock_bench_gateway');
const PRICE_CENTS = 4_200;
const PAYMENT_METHOD = 'pm_card_visa';
/** Seats per second of run, for the API (made up front) and for pgbench: far above 2 cores. */
const [API_SEATS_PER_SECOND, PGBENCH_SEATS_PER_SECOND] = [2_000, 6_000];
/** An idle backend publishes its counters within PGSTAT_IDLE_INTERVAL (10 s): that, plus a margin. */
const STATS_QUIET_MS = 12_000;
const log = cli.logger('flow');
const children = new proc.ChildProcesses(log, 10_000);

const USAGE = `Usage: npm run bench:flow -- [--customers N] [--duration S] [--warmup S] [--json] [--no-pgbench]

  --customers N   virtual customers, one connection each, looping hold -> pay (default 64)
  --duration S    measured window in seconds (default 20)
  --warmup S      warm-up before it, not counted (default 3)
  --json          also print one JSON object as the last line of stdout
  --no-pgbench    skip the pgbench ceilings`;

type Options = ReturnType<typeof readOptions>;

function readOptions() {
  const [text, flag] = [{ type: 'string' }, { type: 'boolean' }] as const;
  const options = { customers: text, duration: text, warmup: text, json: flag, 'no-pgbench': flag };
  const values = cli.parseBenchArgs(options, USAGE);
  const customers = cli.numberOption('customers', values.customers, 64, 1, 1000);
  if (!Number.isInteger(customers)) throw new cli.BenchError('--customers needs an integer');
  return {
    customers,
    duration: cli.numberOption('duration', values.duration, 20, 1, 600),
    warmup: cli.numberOption('warmup', values.warmup, 3, 0, 120),
    json: values.json === true,
    pgbench: values['no-pgbench'] !== true,
  };
}

// ---------------------------------------------------------------------------------------------
// The load: one virtual customer per connection, hold → pay, each seat asked for once

type Seat = { eventId: string; label: string };
type Vu = { token: string; client: HttpClient };
type Cycle = { endedAt: number; hold: number; pay: number; cycle: number };
type Reply = { status: number | string; body: any; text: string; ms: number };

class Phase {
  stop: boolean;
  readonly deadline: number;
  readonly cycles: Cycle[] = [];
  readonly errors: Record<string, number> = {};
  readonly errorSamples: Record<string, string> = {};
  readonly violations: string[] = [];
  outOfSeats = false;

  constructor(seconds: number) {
    this.stop = seconds <= 0;
    this.deadline = performance.now() + seconds * 1000;
  }

  /** False, with the error counted, unless a 201; after a network error, a short pause. */
  async accepted(step: string, reply: Reply): Promise<boolean> {
    if (reply.status === 201) return true;
    const key = `${step} ${reply.status}`;
    this.errors[key] = (this.errors[key] ?? 0) + 1;
    this.errorSamples[key] ??= reply.text.slice(0, 300);
    if (typeof reply.status === 'string') await sleep(50);
    return false;
  }

  /** Whether `violation` is one, noted. */
  violated(violation: string | null): boolean {
    if (violation) this.violations.push(violation);
    return violation !== null;
  }
}

async function send(vu: Vu, path: string, body: unknown, idempotencyKey?: string): Promise<Reply> {
  const headers = { authorization: `Bearer ${vu.token}`, 'content-type': 'application/json' };
  const started = performance.now();
  try {
    const response = await vu.client.request({
      path,
      method: 'POST',
      headers: idempotencyKey ? { ...headers, 'idempotency-key': idempotencyKey } : headers,
      body: JSON.stringify(body),
    });
    return { ...(await http.readAnswer(response)), ms: performance.now() - started };
  } catch (error) {
    const { code, name, message } = error as Error & { code?: string };
    return { status: `error:${code ?? name}`, body: null, text: message, ms: 0 };
  }
}

const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

/** The hold answer must be this seat, held; the payment answer its booking, captured, confirmed. */
function violation(hold: any, seat: Seat, pay?: any): string | null {
  const held = [hold?.status, hold?.eventId, hold?.seats, hold?.amountCents];
  if (!same(held, ['held', seat.eventId, [seat.label], PRICE_CENTS])) {
    return `hold of ${seat.eventId}/${seat.label} answered 201 ${JSON.stringify(hold)}`;
  }
  if (pay === undefined) return null;
  const { booking: b, payment: p } = pay ?? {};
  const paid = [b?.id, b?.status, b?.seats, p?.status, p?.bookingId, p?.amountCents];
  if (same(paid, [hold.id, 'confirmed', hold.seats, 'captured', hold.id, hold.amountCents])) {
    return null;
  }
  return `payment of booking ${hold.id} answered 201 ${JSON.stringify(pay)}`;
}

async function virtualUser(vu: Vu, seats: Seat[], phase: Phase, api: proc.Child): Promise<void> {
  while (!phase.stop && !api.hasExited) {
    const seat = seats.pop();
    if (!seat) {
      phase.outOfSeats = true;
      return;
    }
    const started = performance.now();
    const hold = await send(vu, '/bookings', { eventId: seat.eventId, seatIds: [seat.label] });
    if (!(await phase.accepted('hold', hold)) || phase.violated(violation(hold.body, seat))) {
      continue;
    }
    const route = `/bookings/${hold.body.id}/payments`;
    const pay = await send(vu, route, { paymentMethod: PAYMENT_METHOD }, randomUUID());
    if (!(await phase.accepted('pay', pay))) continue;
    if (phase.violated(violation(hold.body, seat, pay.body))) continue;
    const endedAt = performance.now();
    phase.cycles.push({ endedAt, hold: hold.ms, pay: pay.ms, cycle: endedAt - started });
  }
}

async function runPhase(seconds: number, vus: Vu[], seats: Seat[], api: proc.Child) {
  const phase = new Phase(seconds);
  const timer = setTimeout(() => (phase.stop = true), seconds * 1000);
  try {
    const loops = Promise.all(vus.map((vu) => virtualUser(vu, seats, phase, api)));
    await cli.withTimeout(loops, seconds * 1000 + 70_000, 'the load phase');
  } finally {
    clearTimeout(timer);
    phase.stop = true;
  }
  if (api.hasExited) throw new cli.BenchError(`the API exited:\n${api.tail.join('\n')}`);
  return phase;
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL and the simulator's side

/**
 * The API database's transactions once every backend has published them: STATS_QUIET_MS after
 * its last activity (`quietSince`; 0 once the API exited, which publishes at once) and unchanged
 * for 2 s; `settled` false if that took over 25 s.
 */
async function settle(quietSince: number): Promise<{ xacts: number; settled: boolean }> {
  const started = Date.now();
  let [xacts, changedAt] = [await pg.transactionCount(API_DATABASE), started];
  for (;;) {
    await sleep(250);
    const next = await pg.transactionCount(API_DATABASE);
    if (next !== xacts) [xacts, changedAt] = [next, Date.now()];
    const now = Date.now();
    const settled = now - changedAt >= 2_000 && now - quietSince >= STATS_QUIET_MS;
    if (settled || now - started >= 25_000) return { xacts, settled };
  }
}

type GatewayCounts = Record<'intents' | 'posts' | 'webhooks' | 'backlog', number>;

/** What the simulator did so far, from its own tables. */
async function gatewayCounts(gatewayDb: PgClient): Promise<GatewayCounts> {
  const count = (from: string) => `(SELECT count(*) FROM gateway_sim.${from})::int`;
  const { rows } = await gatewayDb.query(
    `SELECT ${count('payment_intents')} AS intents, ${count('idempotency_keys')} AS posts,
            ${count('webhook_deliveries')} AS webhooks,
            ${count('webhook_deliveries WHERE delivered_at IS NULL AND failed_at IS NULL')} AS backlog`,
  );
  return rows[0] as GatewayCounts;
}

/**
 * Until the simulator delivered every webhook and the outbox the bookings wrote is dispatched (or
 * stalled for 6 s): that work belongs to them. The outbox reads are transactions of the API
 * database too: answers how many, to subtract.
 */
async function drain(gatewayDb: PgClient, apiDbUrl: string) {
  const deadline = Date.now() + 60_000;
  while ((await gatewayCounts(gatewayDb)).backlog > 0 && Date.now() < deadline) await sleep(200);
  return pg.withClient(apiDbUrl, async (client) => {
    let [last, changedAt] = [-1, Date.now()];
    for (let reads = 1; ; reads += 1) {
      const { rows } = await client.query(
        `SELECT count(*)::int AS n FROM outbox_messages WHERE status = 'pending'`,
      );
      const pending = Number(rows[0].n);
      if (pending !== last) [last, changedAt] = [pending, Date.now()];
      if (pending === 0 || Date.now() - changedAt >= 6_000 || Date.now() > deadline) {
        return { pending, reads };
      }
      await sleep(500);
    }
  });
}

type Rows = Record<'confirmed' | 'booked' | 'captured', number>;

/** Confirmed bookings, booked seats and captured payments of one event. */
async function rows(url: string, eventId: string): Promise<Rows> {
  const result = await pg.withClient(url, (client) =>
    client.query(
      `SELECT (SELECT count(*) FROM bookings WHERE event_id = $1 AND status = 'confirmed')::int
                AS confirmed,
              (SELECT count(*) FROM seats WHERE event_id = $1 AND status = 'booked')::int AS booked,
              (SELECT count(*) FROM payments p JOIN bookings b ON b.id = p.booking_id
                WHERE b.event_id = $1 AND p.status = 'captured')::int AS captured`,
      [eventId],
    ),
  );
  return result.rows[0] as Rows;
}

function cpuSampler(admin: PgClient, api: number, gateway: number): CpuSampler {
  let backends = new Map<number, string>();
  const prepare = async (): Promise<void> => {
    const { rows: activity } = await admin.query(`SELECT pid, datname FROM pg_stat_activity`);
    backends = new Map(activity.map((row) => [Number(row.pid), String(row.datname ?? '')]));
  };
  return new CpuSampler((p) => {
    if (p.pid === api) return 'API (node)';
    if (p.pid === gateway) return 'gateway simulator (node)';
    if (p.pid === process.pid) return 'load generator + wire proxy (this node)';
    if (p.comm === 'redis-server') return 'redis-server';
    if (p.comm !== 'postgres') return null;
    const database = backends.get(p.pid);
    if (database === API_DATABASE) return 'PostgreSQL: API database';
    if (database === GATEWAY_DATABASE) return 'PostgreSQL: simulator database';
    // The postmaster, checkpointer, WAL writer... and our reads of pg_stat_* (`postgres`).
    return !database || database === 'postgres' ? 'PostgreSQL: server' : null;
  }, prepare);
}

// ---------------------------------------------------------------------------------------------
// The ceilings

type CeilingRun = { tps: number; clients: number; cycles: number };

/**
 * pgbench of `script` on an event of its own, one seat per cycle; then every cycle pgbench counted
 * must be a confirmed booking, a booked seat and a captured payment, or it measured nothing.
 */
async function ceilingRun(
  url: string,
  script: string,
  clients: number,
  seconds: number,
  run: number,
  values = {},
) {
  const k = Math.ceil((PGBENCH_SEATS_PER_SECOND * seconds) / clients) + 100;
  const seats = { seats: clients * k, customers: clients, priceCents: PRICE_CENTS };
  const ev = await pg.preparePgbench(url, seats);
  const vars = { ev, k, seq: 0, runbase: run * 100_000_000, fencebase: 1e15, ...values };
  const result = await pg.runPgbench(children, { url, script, clients, seconds, vars });
  const cycles = result.processed ?? 0;
  const written = await rows(url, ev);
  if (Object.values(written).some((n) => n !== cycles)) {
    throw new cli.BenchError(`${cycles} cycles but ${JSON.stringify(written)} in the database`);
  }
  return { tps: round(result.tps, 1) ?? 0, clients, cycles } satisfies CeilingRun;
}

/** Both ceilings, with the API and the simulator stopped; one that fails is noted, not fatal. */
async function ceilings(url: string, options: Options, anomalies: string[]) {
  const clients = Math.max(1, Math.min(options.customers, (await pg.availableConnections()) - 5));
  if (clients < options.customers) anomalies.push(`pgbench ran ${clients} clients only`);
  const seconds = Math.max(1, Math.round(options.duration));
  const attempt = (label: string, work: () => Promise<CeilingRun>) => {
    log(`pgbench: ${label}, ${seconds} s`);
    return work().catch((error: Error) => {
      anomalies.push(`pgbench ${label}: ${error.message}`);
      return null;
    });
  };
  const minimalRuns: CeilingRun[] = [];
  for (const [i, n] of [...new Set([clients, 10])].entries()) {
    const done = await attempt(`minimal SQL, ${n} clients`, () =>
      ceilingRun(url, MINIMAL_FLOW_SCRIPT, n, seconds, i + 1),
    );
    if (done) minimalRuns.push(done);
  }
  const ownSql = await attempt(`own-SQL replay, ${clients} clients`, () =>
    ceilingRun(url, OWN_SQL_FLOW_SCRIPT, clients, seconds, 9, ownSqlFlowVariables()),
  );
  const minimal = [...minimalRuns].sort((a, b) => b.tps - a.tps)[0] ?? null;
  return { minimal, minimalRuns, ownSql };
}

// ---------------------------------------------------------------------------------------------
// The run

type Stack = Awaited<ReturnType<typeof startStack>>;

/** The databases, the proxy, the simulator, the API; `closers` collects what to close at the end. */
async function startStack(redisUrl: string, adminToken: string, closers: (() => unknown)[]) {
  const apiDbUrl = await pg.recreateDatabase(API_DATABASE);
  const gatewayDbUrl = await pg.recreateDatabase(GATEWAY_DATABASE);
  const target = new URL(apiDbUrl);
  const proxy = await PgCountingProxy.start(target.hostname, Number(target.port || 5432));
  closers.push(() => proxy.stop());
  const [apiPort, gatewayPort] = [await freePort(), await freePort()];
  const [apiUrl, gatewayUrl] = [apiPort, gatewayPort].map((port) => `http://127.0.0.1:${port}`);
  const secret = `whsec_bench_${randomBytes(16).toString('hex')}`;
  const probe = (url: string, route: string) => () => http.call(url, 'GET', route);
  const gateway = children.node('gateway simulator', proc.GATEWAY_MAIN, {
    ...process.env,
    GATEWAY_PORT: String(gatewayPort),
    GATEWAY_HOST: '127.0.0.1',
    GATEWAY_LOG_LEVEL: 'warn',
    GATEWAY_DATABASE_URL: gatewayDbUrl,
    GATEWAY_WEBHOOK_SECRET: secret,
    GATEWAY_WEBHOOK_URL: `${apiUrl}/payments/webhook`,
  });
  gateway.url = gatewayUrl;
  await proc.waitHealthy(gateway, probe(gatewayUrl, '/health'), 60_000);
  const api = children.node(
    'API',
    proc.API_MAIN,
    proc.benchApiEnv({
      PORT: String(apiPort),
      DATABASE_URL: proxy.urlFor(apiDbUrl),
      REDIS_URL: redisUrl,
      ADMIN_TOKEN: adminToken,
      GATEWAY_URL: gatewayUrl,
      GATEWAY_WEBHOOK_SECRET: secret,
      // The outbox's safety-net poll every 5 s, not every second, so that the counters can settle;
      // NOTIFY still wakes the dispatcher for every message a booking writes, and that counts.
      NOTIFY_POLL_MS: '5000',
    }),
    proc.apiNodeOptions(),
  );
  api.url = apiUrl;
  await proc.waitHealthy(api, probe(apiUrl, '/health/ready'), 60_000);
  const [admin, gatewayDb] = [pg.databaseUrl('postgres'), gatewayDbUrl].map((url) => {
    const client = new PgClient(url).on('error', () => undefined);
    closers.push(() => client.end());
    return client;
  });
  await Promise.all([admin.connect(), gatewayDb.connect()]);
  return { admin, gatewayDb, proxy, api, gateway, apiDbUrl };
}

/** Events enough for API_SEATS_PER_SECOND, their seats interleaved, and one client per customer. */
async function setUp(api: string, adminToken: string, options: Options) {
  const needed = API_SEATS_PER_SECOND * (options.warmup + options.duration);
  const count = Math.ceil(Math.max(options.customers * 4, needed) / 10_000);
  log(`creating ${count} events of 10,000 seats and ${options.customers} customers`);
  const events = await mapLimit(Array.from({ length: count }), 1, (_, i) =>
    http.createEvent(api, adminToken, `Flow bench ${i + 1}`, 100, 100, PRICE_CENTS),
  );
  // Taken from the end (pop), round-robin over the events: the warm-up loads every seat map.
  const seats = events[0].labels.flatMap((_, i) =>
    events.map((event) => ({ eventId: event.id, label: event.labels[i] })),
  );
  seats.reverse();
  const customers = await http.registerCustomers(api, options.customers, randomUUID().slice(0, 8));
  const vus = customers.map((customer) => ({
    token: customer.token,
    client: new HttpClient(api, {
      keepAliveTimeout: 120_000,
      headersTimeout: 30_000,
      bodyTimeout: 30_000,
    }),
  }));
  return { vus, seats };
}

/** The warm-up, then the measured window with the counters before and after. */
async function measure(s: Stack, options: Options, vus: Vu[], seats: Seat[]) {
  log(`warm-up: ${options.customers} customers for ${options.warmup} s`);
  const warmup = await runPhase(options.warmup, vus, seats, s.api);
  const warmupDone = Date.now();
  log('waiting for the webhooks, the outbox and the PostgreSQL counters');
  await drain(s.gatewayDb, s.apiDbUrl);
  const before = await settle(warmupDone);
  const [wire0, gateway0] = [s.proxy.counts(), await gatewayCounts(s.gatewayDb)];
  log(`measuring: ${options.customers} customers for ${options.duration} s`);
  const sampler = cpuSampler(s.admin, s.api.pid, s.gateway.pid);
  await sampler.start();
  const cpuDone = sleep(options.duration * 1000).then(() => sampler.stop());
  const measured = await runPhase(options.duration, vus, seats, s.api);
  const cpu = await cpuDone;
  const outbox = await drain(s.gatewayDb, s.apiDbUrl);
  const [wire, gateway] = [s.proxy.counts(), await gatewayCounts(s.gatewayDb)];
  const after = await settle(Date.now());
  await Promise.all(vus.map((vu) => vu.client.close()));
  log('stopping the API: a LISTEN session publishes its counters only when it exits');
  await children.stop(s.api);
  const publishedAtApiExit = (await settle(0)).xacts - after.xacts;
  const delta = (key: keyof GatewayCounts) => gateway[key] - gateway0[key];
  return {
    warmup,
    measured,
    cpu,
    outbox,
    before,
    after,
    publishedAtApiExit,
    wire: {
      statements: wire.statements - wire0.statements,
      roundTrips: wire.roundTrips - wire0.roundTrips,
    },
    gateway: { intents: delta('intents'), posts: delta('posts'), webhooks: delta('webhooks') },
  };
}

type Measurement = Awaited<ReturnType<typeof measure>>;
type Checks = { ledger: LedgerReport; anomalies: string[] };

/** The ledger must count every cycle counted here once (a lost pay answer may add one). */
function invariants(m: Measurement, { ledger }: Checks) {
  const phases = [m.warmup, m.measured];
  const cycles = phases.reduce((sum, phase) => sum + phase.cycles.length, 0);
  const lost = phases.flatMap((phase) => Object.entries(phase.errors));
  const unanswered = lost.filter(([key]) => key.startsWith('pay ')).reduce((n, [, k]) => n + k, 0);
  const found = phases.flatMap((phase) => phase.violations);
  const counts: [string, number][] = [
    ['confirmed bookings', ledger.confirmedBookings],
    ['booked seats', ledger.bookedSeats],
    ['captured intents at the gateway', ledger.capturedIntents],
  ];
  for (const [what, n] of counts) {
    if (n < cycles || n > cycles + unanswered) found.push(`${n} ${what}, ${cycles} cycles counted`);
  }
  return { cycles, found };
}

async function run(options: Options, check: typeof checkLedger, redisUrl: string) {
  const closers: (() => unknown)[] = [];
  try {
    const adminToken = `bench-admin-${randomBytes(16).toString('hex')}`;
    const stack = await startStack(redisUrl, adminToken, closers);
    const { vus, seats } = await setUp(stack.api.url, adminToken, options);
    const m = await measure(stack, options, vus, seats);
    log('check:ledger over everything (the compiled checker from dist/)');
    const ledger = await cli.withTimeout(
      check({ databaseUrl: stack.apiDbUrl, gatewayUrl: stack.gateway.url, settleMs: 5_000 }),
      180_000,
      'check:ledger',
    );
    await children.stop(stack.gateway);
    const checks: Checks = { ledger, anomalies: [] };
    const ceiling = options.pgbench
      ? await ceilings(stack.apiDbUrl, options, checks.anomalies)
      : null;
    return report(options, m, checks, ceiling);
  } finally {
    await children.stopAll();
    for (const close of closers) await Promise.resolve(close()).catch(() => undefined);
  }
}

// ---------------------------------------------------------------------------------------------
// The report

/** What the reader should know beside the figures; none of it fails the run. */
function notes(m: Measurement, checks: Checks, appTransactions: number | null): string[] {
  const out = checks.anomalies;
  for (const [key, text] of Object.entries(m.measured.errorSamples)) {
    out.push(`${m.measured.errors[key]} x ${key}, the first: ${text}`);
  }
  if (m.measured.outOfSeats) out.push('ran out of seats during the measured window');
  if (m.outbox.pending > 0) out.push(`${m.outbox.pending} outbox messages still pending`);
  if (!m.before.settled || !m.after.settled) out.push('PostgreSQL counters did not settle');
  if ((m.cpu.otherCores ?? 0) > 0.25) out.push(`other processes used ${m.cpu.otherCores} cores`);
  if (appTransactions !== null && Math.abs(appTransactions - OWN_SQL_FLOW_TRANSACTIONS) >= 1) {
    out.push(
      `the API ran ${appTransactions} transactions per booking, the own-SQL replay ` +
        `${OWN_SQL_FLOW_TRANSACTIONS}: it leaves the rest out`,
    );
  }
  return out;
}

type Ceilings = Awaited<ReturnType<typeof ceilings>> | null;

function report(options: Options, m: Measurement, checks: Checks, ceiling: Ceilings) {
  const inside = m.measured.cycles.filter((cycle) => cycle.endedAt <= m.measured.deadline);
  const step = (key: 'hold' | 'pay' | 'cycle') => latencySummary(inside.map((c) => c[key]));
  const latencyMs = { hold: step('hold'), pay: step('pay'), cycle: step('cycle') };
  const bookingsPerSecond = round(inside.length / options.duration, 1);
  // Every booking the measured phase made did its work between the two snapshots.
  const bookings = m.measured.cycles.length;
  const per = (n: number) => (bookings > 0 ? round(n / bookings, 2) : null);
  // Less our outbox reads: a transaction each, plus their session's start-up.
  const transactions = m.after.xacts - m.before.xacts - m.outbox.reads - 1;
  const { cycles, found } = invariants(m, checks);
  const ledgerClean = checks.ledger.violations.length === 0;
  const p50p99 = ({ p50, p99 }: { p50: number | null; p99: number | null }) => ({ p50, p99 });
  const tps = (run?: CeilingRun | null) => (run ? { tps: run.tps, clients: run.clients } : null);
  const summary = {
    customers: options.customers,
    bookingsPerSecond,
    stepsMs: { hold: p50p99(latencyMs.hold), pay: p50p99(latencyMs.pay) },
    transactionsPerBooking: per(transactions),
    statementsPerBooking: per(m.wire.statements),
    roundTripsPerBooking: per(m.wire.roundTrips),
    minimalCeiling: tps(ceiling?.minimal),
    ownSqlCeiling: tps(ceiling?.ownSql),
    vsMinimal: ratio(bookingsPerSecond, ceiling?.minimal?.tps),
    vsOwnSql: ratio(bookingsPerSecond, ceiling?.ownSql?.tps),
    ledgerClean,
  };
  return {
    benchmark: 'flow',
    ok: found.length === 0 && ledgerClean,
    summary,
    durationSeconds: options.duration,
    warmupSeconds: options.warmup,
    latencyMs,
    errors: m.measured.errors,
    warmup: { cycles: m.warmup.cycles.length, errors: m.warmup.errors },
    postgres: {
      bookings,
      transactions,
      publishedAtApiExit: m.publishedAtApiExit,
      ...m.wire,
    },
    gatewayPerBooking: Object.fromEntries(
      Object.entries(m.gateway).map(([what, n]) => [what, per(n)]),
    ),
    cpu: m.cpu,
    ceilings: ceiling,
    ledger: { ...checks.ledger, violations: checks.ledger.violations.slice(0, 20), cycles },
    invariantViolations: found,
    anomalies: notes(m, checks, per(transactions)),
  };
}

type Cell = TableRow['measured'];
const row = (figure: string, measured: Cell, ceiling?: Cell, r?: number | null, goal?: string) =>
  ({ figure, measured, ceiling, ratio: r, goal }) satisfies TableRow;

function printReport(r: ReturnType<typeof report>): void {
  const s = r.summary;
  const ms = ({ p50, p99 }: { p50: number | null; p99: number | null }) =>
    `${fmt(p50, 1)} / ${fmt(p99, 1)}`;
  const at = (c: { tps: number; clients: number } | null) =>
    c && `${fmt(c.tps, 1)}/s @${c.clients}`;
  const cores = Object.entries(r.cpu.groups).sort((a, b) => (b[1].cores ?? 0) - (a[1].cores ?? 0));
  const machine = `${r.cpu.otherCores} / ${r.cpu.machineCores} of ${cpus().length}`;
  const rows: TableRow[] = [
    row('bookings/s vs minimal SQL', s.bookingsPerSecond, at(s.minimalCeiling), s.vsMinimal),
    row('bookings/s vs own-SQL replay', s.bookingsPerSecond, at(s.ownSqlCeiling), s.vsOwnSql),
    row('hold p50 / p99 ms', ms(s.stepsMs.hold)),
    row('pay p50 / p99 ms', ms(s.stepsMs.pay)),
    row('errors by step and status', Object.entries(r.errors).join('; ') || 'none'),
    row('invariant violations', r.invariantViolations.length, null, null, '0'),
    row('-', null),
    row('PG transactions per booking', s.transactionsPerBooking, 'minimal: 4'),
    row('PG statements per booking (wire)', s.statementsPerBooking, 'minimal: 4'),
    row('PG round trips per booking (wire)', s.roundTripsPerBooking, 'minimal: 4'),
    row(
      'gateway intents / POSTs / webhooks per booking',
      Object.values(r.gatewayPerBooking).join(' / '),
    ),
    row('-', null),
    ...cores.map(([name, group]) => row(`CPU: ${name}`, `${fmt(group.cores, 2)} cores`)),
    row('CPU: other processes / whole machine', machine),
    row('-', null),
    row('check:ledger', s.ledgerClean ? 'clean' : 'VIOLATIONS', null, null, 'clean'),
  ];
  const out = [
    `Payment flow: ${s.customers} customers, hold -> pay -> confirmed, ${r.durationSeconds} s`,
    renderTable(rows),
    ...r.ledger.violations.map((v) => `! ledger: ${v}`),
    ...r.invariantViolations.slice(0, 20).map((v) => `! invariant: ${v}`),
    ...r.anomalies.map((note) => `! ${note}`),
    r.ok ? 'OK' : 'FAILED',
  ];
  process.stdout.write(`${out.join('\n')}\n`);
}

async function dropDatabases(): Promise<void> {
  for (const name of [API_DATABASE, GATEWAY_DATABASE]) await pg.dropDatabase(name);
}

async function main(): Promise<number> {
  const options = readOptions();
  for (const file of [proc.API_MAIN, proc.GATEWAY_MAIN, LEDGER_CHECK]) {
    if (!existsSync(file)) throw new cli.BenchError(`${file} is missing: run npm run build`);
  }
  // Loaded now: a rebuild that empties dist/ during the run must not take the checker away.
  const ledger = (await import(pathToFileURL(LEDGER_CHECK).href)) as {
    checkLedger: typeof checkLedger;
  };
  const redisUrl = pg.localRedisUrl();
  await pg.requireRedis(redisUrl);
  try {
    const result = await run(options, ledger.checkLedger, redisUrl);
    printReport(result);
    if (options.json) printJson(result);
    return result.ok ? 0 : 1;
  } finally {
    await cli
      .withTimeout(dropDatabases(), 30_000, 'dropping the bench databases')
      .catch((error: Error) => log(`could not drop the bench databases: ${error.message}`));
  }
}

cli.runBenchmarkMain({
  benchmark: 'flow',
  main,
  children,
  totalMs: 20 * 60_000,
  cleanUp: dropDatabases,
});
