/*
 * Stampede: N customers press "book" on the same seat at the same instant.
 *
 *   npm run bench:stampede -- [--contenders 1000] [--cold] [--json]
 *
 * For LOCK_MODE=redis, then off: the built API on a fresh database behind a PgCountingProxy, one
 * event, N customers (caches warmed and connections opened unless --cold), N concurrent POST
 * /bookings for A1. Per mode: winners (exactly one, or exit 1), statuses, p50/p99, wall time,
 * PostgreSQL statements and round trips until the winner's outbox message was dispatched, and the
 * share of losers answered from Redis alone. See docs/benchmarks.md.
 */
import { randomBytes } from 'node:crypto';
import type { Agent } from 'undici';
import * as http from '../support/bench/bench-http';
import * as pg from '../support/bench/bench-postgres';
import { BenchRun, HOUR_MS } from '../support/bench/bench-run';
import { drainOutbox, holdMetrics, storedRows } from '../support/bench/bench-state';
import * as cli from '../support/bench/cli';
import { fmt, percent, printReport, type TableRow } from '../support/bench/report';
import { round, subtract } from '../support/bench/stats';
import { fireWave, tallyShots, waveAgent } from '../support/bench/wave';

const SEAT = 'A1';
const MODES = { lockOn: 'redis', lockOff: 'off' } as const;
type ModeKey = keyof typeof MODES;
const BURST_TIMEOUT_MS = 120_000;
const run = new BenchRun('stampede');

const USAGE = `Usage: npm run bench:stampede -- [--contenders N] [--cold] [--json]

  --contenders N  concurrent POST /bookings for the same seat (1 to 10000, default 1000)
  --cold          skip the warm-up (token and seat-map caches, pre-opened connections)
  --json          also print one JSON object as the last line of stdout`;

/** Holds answered 409 by Redis alone, and holds decided by PostgreSQL alone (Redis down). */
const metrics = (api: string) => holdMetrics(api, ['conflict_redis'], true);

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
      // Our own reads go straight to PostgreSQL, not through the proxy: they are not counted.
      const pending = await drainOutbox(benchUrl, 10_000);
      const wire = subtract(proxy.counts(), wireBefore);
      const { seats, bookings } = await storedRows(benchUrl, event.id);
      const rows = {
        pending,
        bookings: bookings.length,
        seat: seats.find((s) => s.label === SEAT),
      };
      const counted = subtract(await metrics(api.url), metricsBefore);
      const log = api.logSince(logBefore);
      return { lockMode, contenders, burst, wire, rows, metrics: counted, log };
    } finally {
      // Our connections first: a graceful shutdown would otherwise wait for them.
      await agent?.destroy().catch(() => undefined);
    }
  });
}

function summarize(m: Awaited<ReturnType<typeof measure>>) {
  const { statuses, codes, samples, latency } = tallyShots(m.burst.shots);
  const { '201': winners = 0, '409': conflicts = 0, ...otherStatuses } = statuses;
  const losers = m.contenders - winners;
  const summary = {
    ...{ winners, conflicts, otherStatuses },
    ...{ statements: m.wire.statements, roundTrips: m.wire.roundTrips },
    /** Losers answered from Redis alone, 0..1; null when there is no loser. */
    answeredWithoutPostgres: losers > 0 ? round(m.metrics.conflict_redis / losers, 4) : null,
    ...{ p50Ms: latency.p50, p99Ms: latency.p99, wallMs: round(m.burst.wallMs) },
  };
  const odd = Object.entries(samples).filter(([c]) => c !== '201' && !c.startsWith('409 '));
  const { levels, messages } = m.log;
  const anomalies = [
    winners !== 1 && `${winners} winners instead of exactly one`,
    ...odd.map(([code, text]) => `${codes[code]} x ${code}, first body: ${text}`),
    m.rows.bookings !== winners && `${m.rows.bookings} bookings stored`,
    winners > 0 && m.rows.seat?.status !== 'held' && `seat ${SEAT} is ${m.rows.seat?.status}`,
    m.rows.pending > 0 && `${m.rows.pending} outbox messages pending after 10 s`,
    levels.error + levels.fatal > 0 && `API errors during the burst: ${JSON.stringify(messages)}`,
    m.lockMode === 'redis' &&
      m.metrics.fallbacks > 0 &&
      `${m.metrics.fallbacks} holds fell back to PostgreSQL alone with Redis up`,
  ].filter((note): note is string => typeof note === 'string');
  const { conflict_redis: conflictRedis, fallbacks } = m.metrics;
  const details = { conflictRedis, fallbacks, newConnections: m.wire.connections };
  return { summary, details: { ...details, maxMs: latency.max, apiLog: m.log }, anomalies };
}
type ModeSummary = ReturnType<typeof summarize>['summary'];

function modeRows(title: string, s: ModeSummary): TableRow[] {
  const other = Object.entries(s.otherStatuses).map(([status, n]) => `${status}: ${n}`);
  const cells: [string, TableRow['measured'], string?][] = [
    ['winners (201)', s.winners, 'exactly 1'],
    ['409 / other statuses', `${s.conflicts} / ${other.join(', ') || '-'}`],
    ['PG statements / round trips', `${fmt(s.statements)} / ${fmt(s.roundTrips)}`],
    [
      'losers answered without PG',
      s.answeredWithoutPostgres === null ? null : percent(s.answeredWithoutPostgres),
    ],
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
  const on = summarize(await measure(MODES.lockOn, contenders, warm));
  const off = summarize(await measure(MODES.lockOff, contenders, warm));
  const ok = on.summary.winners === 1 && off.summary.winners === 1;
  const notes = (key: ModeKey, mode: typeof on) =>
    mode.anomalies.map((n) => `[${MODES[key]}] ${n}`);
  const section = {
    title: `Stampede: ${contenders} contenders, one seat (${SEAT}), ${warm ? 'warm' : 'cold'}`,
    rows: [
      ...modeRows('lock on', on.summary),
      { figure: '-' },
      ...modeRows('LOCK_MODE=off', off.summary),
    ],
    lines: warm ? [] : ['--cold: losers still read their token from PostgreSQL first'],
    notes: [...notes('lockOn', on), ...notes('lockOff', off)],
  };
  const json = {
    ...{ benchmark: 'stampede', ok, contenders, seat: SEAT, warm },
    summary: { contenders, lockOn: on.summary, lockOff: off.summary },
    details: { lockOn: on.details, lockOff: off.details },
    anomalies: { lockOn: on.anomalies, lockOff: off.anomalies },
  };
  printReport(section, args.json ? json : undefined);
  return ok ? 0 : 1;
}

run.main(main, 15 * 60_000);
