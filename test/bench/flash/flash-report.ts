import {
  fmt,
  percent,
  perSecond,
  type ReportSection,
  type TableRow,
} from '../../support/bench/report';
import {
  LIVE_CONNECTIONS,
  type Options,
  SCENARIO_TITLES,
  SECTION,
  WITHOUT_PG_GOAL,
} from './flash-options';
import type { WaveSummary } from './flash-checks';
import { STATEMENT_KINDS } from './flash-stack';
import type { Result } from './flash-summary';

/* The flash sale's report: a table per scenario, then the ceilings. */

type Expected = { units: number; exact: boolean; judgeWithoutPg?: boolean };

/** What a wave sold and refused, and whether anything went wrong. */
function outcomeRows(title: string, w: WaveSummary, expected: Expected): TableRow[] {
  const refusals = Object.entries(w.refusals).map(([key, n]) => `${key}: ${fmt(n)}`);
  const unitsGoal = expected.exact ? `exactly ${fmt(expected.units)}` : `<= ${fmt(expected.units)}`;
  return [
    ...(w.apiDied
      ? [{ figure: `${title}: THE API DIED IN THE WAVE`, measured: 'yes', goal: 'no' }]
      : []),
    {
      figure: `${title}: units sold (201s) / seats table / live bookings`,
      measured: `${fmt(w.unitsSold)} / ${fmt(w.unitsHeldInTable)} / ${fmt(w.unitsInLiveBookings)}`,
      goal: unitsGoal,
    },
    {
      figure: '  requests / holds (201) / units free at start / free at end',
      measured: `${fmt(w.requests)} / ${fmt(w.holds)} / ${fmt(w.freeAtStart)} / ${fmt(w.freeAtEnd)}`,
    },
    ...(refusals.length ? refusals : ['-']).map((text, i) => ({
      figure: i === 0 ? '  refusals by status and code' : '',
      measured: text,
    })),
    {
      figure: '  units twice / oversold / wrong 201s / lost requests',
      measured: [w.unitsTwice, w.oversold, w.wrongAnswers, w.lost].map((n) => fmt(n)).join(' / '),
      goal: '0 / 0 / 0 / 0',
    },
    {
      figure: '  refused SOLD_OUT while enough units were free (at the end)',
      measured: fmt(w.refusedWhileEnoughFree),
      goal: '0',
    },
    {
      figure: '  losers answered without a PostgreSQL statement (wire, at least)',
      measured: percent(w.withoutPostgres),
      goal: expected.judgeWithoutPg ? `>= ${fmt(WITHOUT_PG_GOAL * 100, 1)} %` : undefined,
    },
    {
      figure: '    metric: sold_out_redis share / sold_out_redis / sold_out_database / fallbacks',
      measured:
        `${percent(w.soldOutRedisShare)} / ${fmt(w.soldOutRedis)} / ${fmt(w.soldOutDatabase)} / ` +
        fmt(w.fallbacks),
    },
    {
      figure: '  Redis admission count before / after (TTL ms) / PostgreSQL free after',
      measured:
        `${w.admissionBefore ?? 'none'} / ${w.admissionAfter ?? 'none'} ` +
        `(${w.admissionAfterTtlMs ?? '-'}) / ${fmt(w.freeAtEnd)}`,
    },
  ];
}

/** How fast a wave sold, beside the ceilings; what it cost PostgreSQL and Redis. */
function speedRows(w: WaveSummary, r: Result, expected: Expected): TableRow[] {
  const c = r.ceilings;
  const claim = c.unitClaim
    ? `${perSecond(c.unitClaim.unitsPerSecond)} (${c.unitClaim.clients} cl.)`
    : '- (no pgbench run)';
  return [
    {
      figure: '  time to sell out (last 201) / whole wave, ms',
      measured: `${fmt(w.sellOutMs, 1)} / ${fmt(w.wallMs, 1)}`,
      ceiling:
        w.capacityAtCeilingMs === null
          ? undefined
          : `${fmt(w.capacityAtCeilingMs, 1)} ms (${fmt(expected.units)} units)`,
    },
    {
      figure: '  units/s to sell out vs pgbench unit claim (physical limit)',
      measured: perSecond(w.unitsPerSecond),
      ceiling: claim,
      ratio: w.vsUnitClaim,
    },
    {
      figure: '  requests/s in the wave vs /health/live (same server)',
      measured: perSecond(w.requestsPerSecond),
      ceiling: c.live ? `${perSecond(c.live.perSecond)} (${c.live.connections} conn.)` : '-',
      ratio: w.vsLive,
    },
    {
      figure: '    vs raw DECRBY on the same redis-server',
      ceiling: `${perSecond(c.redis.perSecond)} (${c.redis.tool}, ${c.redis.clients} cl.)`,
      ratio: w.vsRedis,
    },
    {
      figure: '  latency p50 / p99 ms: all; 201s; refusals',
      measured:
        `${fmt(w.p50Ms, 1)} / ${fmt(w.p99Ms, 1)}; ` +
        `${fmt(w.latencySoldMs.p50, 1)} / ${fmt(w.latencySoldMs.p99, 1)}; ` +
        `${fmt(w.latencyRefusedMs.p50, 1)} / ${fmt(w.latencyRefusedMs.p99, 1)}`,
    },
    {
      figure: '  PostgreSQL statements / round trips on the wire in the wave',
      measured: `${fmt(w.statements)} / ${fmt(w.roundTrips)}`,
    },
    {
      figure: '    hold calls / admission seeds / outbox fan-out / other',
      measured: STATEMENT_KINDS.map((kind) => fmt(w.statementsByKind[kind])).join(' / '),
    },
    {
      figure: '    per unit sold / per request',
      measured: `${fmt(w.statementsPerUnit, 2)} / ${fmt(w.statementsPerRequest, 3)}`,
    },
    {
      figure: '    incl. the outbox fan-out / per unit sold',
      measured: `${fmt(w.statementsWithFanOut)} / ${fmt(w.statementsWithFanOutPerUnit, 2)}`,
    },
    {
      figure: '  Redis: scripts sent (NOSCRIPT) / all commands / per request',
      measured:
        w.redisCommands === null
          ? 'server stopped'
          : `${fmt(w.redisScripts)} (${fmt(w.redisNoscript)}) / ${fmt(w.redisCommands)} / ` +
            fmt(w.redisCommandsPerRequest, 2),
    },
    {
      figure: '  machine busy cores in the wave (of 2) / load average before',
      measured: `${fmt(w.machineCores, 2)} / ${w.loadAverageBefore?.map((n) => n.toFixed(2)).join(' ') ?? '-'}`,
    },
  ];
}

function waveRows(title: string, w: WaveSummary, r: Result, expected: Expected): TableRow[] {
  return [...outcomeRows(title, w, expected), ...speedRows(w, r, expected)];
}

/** One scenario: wave 1, the FLUSHALL, the releases, wave 2. */
function scenarioSection(
  options: Options,
  r: Result,
  s: Result['scenarios'][number],
): ReportSection {
  const { wave1, wave2, release, flush, scenario } = s.summary;
  const normal = scenario === 'normal';
  const expected1 = { units: options.capacity, exact: normal, judgeWithoutPg: normal };
  const rows: TableRow[] = waveRows('wave 1', wave1, r, expected1);
  if (flush) {
    rows.push({
      figure: '  FLUSHALL sent after answers / at ms',
      measured: `${fmt(flush.afterAnswers)} / ${fmt(flush.atMs, 1)}`,
    });
  }
  rows.push(
    { figure: '-' },
    {
      figure: 'released by their owners: bookings / units / free after',
      measured: `${fmt(release.bookings)} / ${fmt(release.units)} / ${fmt(release.freeAtWave2)}`,
    },
  );
  if (wave2) {
    rows.push(
      { figure: '-' },
      ...waveRows('wave 2', wave2, r, { units: release.freeAtWave2, exact: true }),
      {
        figure: '  sold what was free, or as many as fit',
        measured: s.summary.wave2Fits ? 'yes' : 'no',
        goal: 'yes',
      },
    );
  }
  return {
    title:
      `Flash sale, ${SCENARIO_TITLES[scenario]}: ${fmt(options.customers)} x POST /bookings ` +
      `{section: '${SECTION}', quantity: 1-4} at once on ${fmt(options.capacity)} GA units ` +
      `(seed ${options.seed}); wave 2: ${fmt(wave2?.requests ?? 0)} customers without a booking`,
    rows,
    lines: s.failures.map((f) => `FAILED ${f}`),
    notes: s.anomalies,
  };
}

/** The ceilings, the API's peak memory, the registration time. */
function ceilingSection(options: Options, r: Result): ReportSection {
  const { live, redis, unitClaimRuns } = r.ceilings;
  const rows: TableRow[] = [
    ...unitClaimRuns.map((run) => ({
      figure: `pgbench ${run.script}, ${run.clients} clients (units/s, transactions/s)`,
      ceiling: `${perSecond(run.unitsPerSecond)}, ${perSecond(run.tps)}`,
    })),
    {
      figure: `GET /health/live, ${LIVE_CONNECTIONS} connections (p50 ms)`,
      ceiling: live ? `${perSecond(live.perSecond)} (${fmt(live.p50Ms, 1)})` : '-',
    },
    {
      figure: `raw DECRBY, ${redis.tool}, ${redis.clients} clients`,
      ceiling: perSecond(redis.perSecond),
    },
    { figure: 'API peak RSS (VmHWM) MB', measured: fmt(r.peakRssMB, 1), goal: '<= 250' },
    {
      figure: `registration of ${fmt(options.customers)} customers (not measured), ms`,
      measured: fmt(r.registrationMs),
    },
  ];
  return {
    title: 'Ceilings (same run; pgbench and redis-benchmark with the API stopped)',
    rows,
    lines: [
      'pgbench: one UPDATE of the first free unit rows (FOR UPDATE SKIP LOCKED) per transaction; ' +
        'no booking row, no count, no cap',
    ],
    notes: r.notes,
  };
}

/** The report's sections; the last line says OK or FAILED. */
export function reportSections(options: Options, r: Result): ReportSection[] {
  return [
    ...r.scenarios.map((s) => scenarioSection(options, r, s)),
    ceilingSection(options, r),
    { lines: [r.ok ? 'OK' : 'FAILED'] },
  ];
}
