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
import { setTimeout as sleep } from 'node:timers/promises';
import type { Agent } from 'undici';
import * as http from '../support/bench/bench-http';
import * as pg from '../support/bench/bench-postgres';
import { BenchRun, HOUR_MS } from '../support/bench/bench-run';
import { holdMetrics } from '../support/bench/bench-state';
import * as cli from '../support/bench/cli';
import { fmt, printReport, type TableRow } from '../support/bench/report';
import { round, subtract } from '../support/bench/stats';
import { fireWave, tallyShots, waveAgent } from '../support/bench/wave';

const SEAT = 'A1';
const MODES = { lockOn: 'redis', lockOff: 'off' } as const;
type ModeKey = keyof typeof MODES;
const MODE_KEYS = Object.keys(MODES) as ModeKey[];
const BURST_TIMEOUT_MS = 120_000;
const run = new BenchRun('stampede');

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

/** Holds answered 409 by Redis alone, and holds decided by PostgreSQL alone (Redis down). */
async function metrics(api: string) {
  const { conflict_redis: conflictRedis, fallbacks } = await holdMetrics(
    api,
    ['conflict_redis'],
    true,
  );
  return { conflictRedis, fallbacks };
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
  const { statuses, codes, samples, latency } = tallyShots(m.burst.shots);
  const { '201': winners = 0, '409': conflicts = 0, ...otherStatuses } = statuses;
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
  for (const [code, text] of Object.entries(samples)) {
    if (code !== '201' && !code.startsWith('409 ')) {
      anomalies.push(`${codes[code]} x ${code}, first body: ${text}`);
    }
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
  const benchUrl = await run.freshDatabase('seatlock_bench');
  const proxy = await run.countingProxy(benchUrl);
  const apiOptions = {
    name: `API (${lockMode})`,
    database: proxy.urlFor(benchUrl),
    redis: pg.localRedisUrl(),
    // The outbox's safety-net polls would count as stampede traffic; NOTIFY still wakes it.
    env: { LOCK_MODE: lockMode, NOTIFY_POLL_MS: HOUR_MS },
  };
  return run.withApi(apiOptions, async (api) => {
    const event = await http.createEvent(api.url, run.adminToken, `Stampede ${lockMode}`, 10, 100);
    if (!event.labels.includes(SEAT)) throw new cli.BenchError(`the event has no seat ${SEAT}`);
    run.log(`[${lockMode}] registering ${contenders} customers${warm ? ', warming caches' : ''}`);
    const tag = randomBytes(4).toString('hex');
    const customers = await http.registerCustomers(api.url, contenders, tag);
    if (warm) await http.warmCaches(api.url, customers, [event]);
    let agent: Agent | undefined;
    try {
      agent = await waveAgent(api.url, contenders, { open: warm, timeoutMs: BURST_TIMEOUT_MS });
      // /metrics reads PostgreSQL too: read it outside the counted window.
      const metricsBefore = await metrics(api.url);
      const [logBefore, wireBefore] = [api.snapshot(), proxy.counts()];
      run.log(`[${lockMode}] burst: ${contenders} x POST /bookings {seatIds:['${SEAT}']}`);
      const body = { eventId: event.id, seatIds: [SEAT] };
      const requests = customers.map(({ token }) => ({ token, body }));
      const burst = await fireWave({ api: api.url, agent, requests, timeoutMs: BURST_TIMEOUT_MS });
      const rows = await afterBurst(benchUrl, event.id);
      const wire = subtract(proxy.counts(), wireBefore);
      const counted = subtract(await metrics(api.url), metricsBefore);
      const log = api.logSince(logBefore);
      return { lockMode, contenders, burst, wire, rows, metrics: counted, log };
    } finally {
      // Our connections first: a graceful shutdown would otherwise wait for them.
      await agent?.destroy().catch(() => undefined);
    }
  });
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

async function main(): Promise<number> {
  const args = cli.parseBenchArgs(
    { contenders: { type: 'string' }, cold: { type: 'boolean' }, json: { type: 'boolean' } },
    USAGE,
  );
  const contenders = Math.floor(cli.numberOption('contenders', args.contenders, 1000, 1, 10_000));
  const warm = !args.cold;
  await pg.requireRedis(pg.localRedisUrl());
  const modes = {} as Record<ModeKey, ModeReport>;
  for (const key of MODE_KEYS) modes[key] = summarize(await measure(MODES[key], contenders, warm));
  const ok = MODE_KEYS.every((key) => modes[key].summary.winners === 1);
  const [on, off] = [modes.lockOn, modes.lockOff];
  const section = {
    title: `Stampede: ${contenders} contenders, one seat (${SEAT}), ${warm ? 'warm' : 'cold'}`,
    rows: [
      ...modeRows('lock on', on.summary),
      { figure: '-' },
      ...modeRows('LOCK_MODE=off', off.summary),
    ],
    lines: warm ? [] : ['--cold: losers still read their token from PostgreSQL first'],
    notes: MODE_KEYS.flatMap((key) =>
      modes[key].anomalies.map((note) => `[${MODES[key]}] ${note}`),
    ),
  };
  printReport(
    section,
    args.json
      ? {
          benchmark: 'stampede',
          ok,
          contenders,
          seat: SEAT,
          warm,
          summary: { contenders, lockOn: on.summary, lockOff: off.summary },
          details: { lockOn: on.details, lockOff: off.details },
          anomalies: { lockOn: on.anomalies, lockOff: off.anomalies },
        }
      : undefined,
  );
  return ok ? 0 : 1;
}

run.main(main, 15 * 60_000);
