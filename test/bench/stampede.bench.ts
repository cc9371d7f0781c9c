/*
 * Stampede: N customers press "book" on the same seat at the same instant.
 *
 *   npm run bench:stampede -- [--contenders 1000] [--cold] [--json]
 *
 * For LOCK_MODE=redis, then LOCK_MODE=off, it starts the built API on a fresh database of its own,
 * behind a PgCountingProxy, creates one event and N customers, warms the token and seat-map caches
 * and opens every connection (unless --cold), then fires N concurrent POST /bookings for seat A1.
 * Per mode: winners (exactly one, or exit 1), statuses, p50/p99, wall time; PostgreSQL statements
 * and round trips on the wire from the burst until the winner's outbox message was dispatched; the
 * share of losers answered from Redis alone (conflict_redis holds / (contenders - winners)).
 * Uses DATABASE_URL's server and REDIS_URL, both on this machine. See docs/benchmarks.md.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request } from 'undici';
import { PgCountingProxy } from '../support/pg-counting-proxy';
import { freePort } from '../support/redis-server';
import * as http from '../support/bench/bench-http';
import * as pg from '../support/bench/bench-postgres';
import * as proc from '../support/bench/child-processes';
import * as cli from '../support/bench/cli';
import { latencySummary, round, subtract } from '../support/bench/stats';
import { fmt, printJson, renderTable, type TableRow } from '../support/bench/table';

const SEAT = 'A1';
const MODES = { lockOn: 'redis', lockOff: 'off' } as const;
type ModeKey = keyof typeof MODES;
const MODE_KEYS = Object.keys(MODES) as ModeKey[];
const BURST_TIMEOUT_MS = 120_000;
const log = cli.logger('stampede');
const children = new proc.ChildProcesses(log, 10_000);

const USAGE = `Usage: npm run bench:stampede -- [--contenders N] [--cold] [--json]

  --contenders N  concurrent POST /bookings for the same seat (1 to 10000, default 1000)
  --cold          skip the warm-up (token and seat-map caches, pre-opened connections)
  --json          also print one JSON object as the last line of stdout`;

export interface ModeSummary {
  winners: number;
  conflicts: number;
  otherStatuses: Record<string, number>;
  statements: number;
  roundTrips: number;
  /** Losers answered from Redis alone, 0..1; null when there is no loser. */
  answeredWithoutPostgres: number | null;
  p50Ms: number | null;
  p99Ms: number | null;
  wallMs: number | null;
}

type ModeReport = { summary: ModeSummary; details: Record<string, unknown>; anomalies: string[] };
type Shot = { status: string; ms: number; text: string };

const REDIS_CONFLICTS = { outcome: 'conflict_redis' };
type HoldMetrics = Record<'conflictRedis' | 'fallbacks', number>;

async function holdMetrics(api: string): Promise<HoldMetrics> {
  return {
    conflictRedis: await http.metricValue(api, 'seatlock_holds_total', REDIS_CONFLICTS),
    fallbacks: await http.metricValue(api, 'seatlock_hold_fallbacks_total'),
  };
}

async function startApi(lockMode: string, databaseUrl: string, adminToken: string) {
  const port = await freePort();
  const env = proc.benchApiEnv({
    DATABASE_URL: databaseUrl,
    REDIS_URL: pg.localRedisUrl(),
    PORT: String(port),
    LOCK_MODE: lockMode,
    ADMIN_TOKEN: adminToken,
    // Holds only: a closed port keeps the API from starting a gateway simulator of its own.
    GATEWAY_URL: 'http://127.0.0.1:9',
    // The outbox's safety-net polls would count as stampede traffic; NOTIFY still wakes it.
    NOTIFY_POLL_MS: '3600000',
  });
  const api = children.node(`API (${lockMode})`, proc.API_MAIN, env, proc.apiNodeOptions());
  api.url = `http://127.0.0.1:${port}`;
  const probe = () => http.call(api.url, 'GET', '/health/ready', { timeoutMs: 2_000 });
  await proc.waitHealthy(api, probe, 60_000);
  return api;
}

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
  // /health/live does not touch PostgreSQL: the burst then measures requests, not handshakes.
  const live = Array.from({ length: contenders }, () =>
    http.call(api, 'GET', '/health/live', { dispatcher: agent }),
  );
  await cli.withTimeout(Promise.all(live), 60_000, 'opening connections');
  return agent;
}

/** N requests at once: a burst, not a fixed-rate window, hence undici and not autocannon. */
async function fire(agent: Agent, api: string, eventId: string, customers: http.BenchCustomer[]) {
  const body = JSON.stringify({ eventId, seatIds: [SEAT] });
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
  const shots = await cli.withTimeout(all, BURST_TIMEOUT_MS, 'the burst');
  return { shots, wallMs: performance.now() - wallStart };
}

/**
 * Waits (10 s at most) until the winner's outbox message left 'pending', then reads what was
 * stored. Our own reads go straight to PostgreSQL, not through the proxy: they are not counted.
 */
async function afterBurst(benchUrl: string, eventId: string) {
  const deadline = Date.now() + 10_000;
  return pg.withClient(benchUrl, async (client) => {
    const read = () =>
      client.query<{ pending: number; bookings: number; seat: string | null }>(
        `SELECT (SELECT count(*)::int FROM outbox_messages WHERE status = 'pending') AS pending,
                (SELECT count(*)::int FROM bookings WHERE event_id = $1) AS bookings,
                (SELECT status FROM seats WHERE event_id = $1 AND label = $2) AS seat`,
        [eventId, SEAT],
      );
    let { rows } = await read();
    while (rows[0].pending > 0 && Date.now() < deadline) {
      await sleep(50);
      ({ rows } = await read());
    }
    return rows[0];
  });
}

type Measured = Awaited<ReturnType<typeof measure>>;

function summarize(m: Measured): ModeReport {
  const statuses: Record<string, number> = {};
  const samples: Record<string, string> = {};
  for (const shot of m.burst.shots) {
    statuses[shot.status] = (statuses[shot.status] ?? 0) + 1;
    if (shot.status !== '201' && shot.status !== '409') samples[shot.status] ??= shot.text;
  }
  const { '201': winners = 0, '409': conflicts = 0, ...otherStatuses } = statuses;
  const latency = latencySummary(m.burst.shots.map((shot) => shot.ms));
  const losers = m.contenders - winners;
  const summary: ModeSummary = {
    winners,
    conflicts,
    otherStatuses,
    statements: m.wire.statements,
    roundTrips: m.wire.roundTrips,
    answeredWithoutPostgres: losers > 0 ? round(m.metrics.conflictRedis / losers, 4) : null,
    p50Ms: latency.p50,
    p99Ms: latency.p99,
    wallMs: round(m.burst.wallMs),
  };
  const anomalies: string[] = [];
  if (winners !== 1) anomalies.push(`${winners} winners instead of exactly one`);
  for (const [status, text] of Object.entries(samples)) {
    anomalies.push(`${statuses[status]} x ${status}, first body: ${text.slice(0, 300)}`);
  }
  if (m.rows.bookings !== winners) anomalies.push(`${m.rows.bookings} bookings stored`);
  if (winners > 0 && m.rows.seat !== 'held') anomalies.push(`seat ${SEAT} is ${m.rows.seat}`);
  if (m.rows.pending > 0) anomalies.push(`${m.rows.pending} outbox messages pending after 10 s`);
  if (m.log.levels.error + m.log.levels.fatal > 0) {
    anomalies.push(`API errors during the burst: ${JSON.stringify(m.log.messages)}`);
  }
  if (m.lockMode === 'redis' && m.metrics.fallbacks > 0) {
    anomalies.push(`${m.metrics.fallbacks} holds fell back to PostgreSQL alone with Redis up`);
  }
  const details = { ...m.metrics, newConnections: m.wire.connections, maxMs: latency.max };
  return { summary, details: { ...details, apiLog: m.log }, anomalies };
}

/** One mode, from a fresh database to the API stopped; answers the raw measurements. */
async function measure(lockMode: string, contenders: number, warm: boolean) {
  const database = pg.benchDatabaseName('seatlock_bench');
  log(`[${lockMode}] fresh database ${database}`);
  const benchUrl = await cli.withTimeout(pg.recreateDatabase(database), 30_000, 'recreating it');
  const target = new URL(benchUrl);
  const proxy = await PgCountingProxy.start(target.hostname, Number(target.port || 5432));
  const adminToken = `bench-admin-${randomBytes(16).toString('hex')}`;
  let api: proc.Child | undefined;
  let agent: Agent | undefined;
  try {
    api = await startApi(lockMode, proxy.urlFor(benchUrl), adminToken);
    const event = await http.createEvent(api.url, adminToken, `Stampede ${lockMode}`, 10, 100);
    if (!event.labels.includes(SEAT)) throw new cli.BenchError(`the event has no seat ${SEAT}`);
    log(`[${lockMode}] registering ${contenders} customers${warm ? ', warming caches' : ''}`);
    const tag = randomBytes(4).toString('hex');
    const customers = await http.registerCustomers(api.url, contenders, tag);
    if (warm) await http.warmCaches(api.url, customers, [event]);
    agent = await burstAgent(api.url, contenders, warm);
    // /metrics reads PostgreSQL too: read it outside the counted window.
    const metricsBefore = await holdMetrics(api.url);
    const [logBefore, wireBefore] = [api.snapshot(), proxy.counts()];
    log(`[${lockMode}] burst: ${contenders} x POST /bookings {seatIds:['${SEAT}']}`);
    const burst = await fire(agent, api.url, event.id, customers);
    const rows = await afterBurst(benchUrl, event.id);
    const wire = subtract(proxy.counts(), wireBefore);
    const metrics = subtract(await holdMetrics(api.url), metricsBefore);
    return { lockMode, contenders, burst, wire, rows, metrics, log: api.logSince(logBefore) };
  } catch (error) {
    if (api?.tail.length) log(`[${lockMode}] last API output:\n${api.tail.join('\n')}`);
    throw error;
  } finally {
    // Our connections first: a graceful shutdown would otherwise wait for them.
    await agent?.destroy().catch(() => undefined);
    if (api) await children.stop(api);
    await proxy.stop();
  }
}

function modeRows(title: string, s: ModeSummary): TableRow[] {
  const other = Object.entries(s.otherStatuses).map(([status, n]) => `${status}: ${n}`);
  const share = s.answeredWithoutPostgres;
  const cells: [string, TableRow['measured'], string?][] = [
    ['winners (201)', s.winners, 'exactly 1'],
    ['409 / other statuses', `${s.conflicts} / ${other.join(', ') || '-'}`],
    ['PG statements / round trips', `${fmt(s.statements)} / ${fmt(s.roundTrips)}`],
    ['losers answered without PG', share === null ? null : `${fmt(share * 100, 1)} %`],
    ['latency p50 / p99', `${fmt(s.p50Ms, 1)} / ${fmt(s.p99Ms, 1)} ms`],
    ['wall time', `${fmt(s.wallMs, 1)} ms`],
  ];
  return cells.map(([f, measured, goal]) => ({ figure: `${title}: ${f}`, measured, goal }));
}

function printReport(contenders: number, warm: boolean, modes: Record<ModeKey, ModeReport>) {
  const warmth = warm ? 'warm' : 'cold';
  process.stdout.write(`\nStampede: ${contenders} contenders, one seat (${SEAT}), ${warmth}\n`);
  const rows = [
    ...modeRows('lock on', modes.lockOn.summary),
    { figure: '-' },
    ...modeRows('LOCK_MODE=off', modes.lockOff.summary),
  ];
  process.stdout.write(`${renderTable(rows)}\n`);
  if (!warm) process.stdout.write('--cold: losers still read their token from PostgreSQL first\n');
  for (const key of MODE_KEYS) {
    for (const note of modes[key].anomalies) process.stdout.write(`! [${MODES[key]}] ${note}\n`);
  }
}

async function main(): Promise<number> {
  const args = cli.parseBenchArgs(
    { contenders: { type: 'string' }, cold: { type: 'boolean' }, json: { type: 'boolean' } },
    USAGE,
  );
  const contenders = Math.floor(cli.numberOption('contenders', args.contenders, 1000, 1, 10_000));
  const warm = !args.cold;
  if (!existsSync(proc.API_MAIN)) throw new cli.BenchError('no dist/: run npm run build first');
  await pg.requireRedis(pg.localRedisUrl());
  const modes = {} as Record<ModeKey, ModeReport>;
  try {
    for (const key of MODE_KEYS) {
      modes[key] = summarize(await measure(MODES[key], contenders, warm));
    }
  } finally {
    await pg.dropDatabase(pg.benchDatabaseName('seatlock_bench')).catch(() => undefined);
  }
  const ok = MODE_KEYS.every((key) => modes[key].summary.winners === 1);
  printReport(contenders, warm, modes);
  if (args.json) {
    const [on, off] = [modes.lockOn, modes.lockOff];
    printJson({
      benchmark: 'stampede',
      ok,
      contenders,
      seat: SEAT,
      warm,
      summary: { contenders, lockOn: on.summary, lockOff: off.summary },
      details: { lockOn: on.details, lockOff: off.details },
      anomalies: { lockOn: on.anomalies, lockOff: off.anomalies },
    });
  }
  return ok ? 0 : 1;
}

cli.runBenchmarkMain({ benchmark: 'stampede', main, children, totalMs: 15 * 60_000 });
