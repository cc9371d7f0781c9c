import { liveBookings } from '../../support/bench/bench-state';
import {
  fmt,
  percent,
  perSecond,
  type ReportSection,
  type TableRow,
} from '../../support/bench/report';
import type { measure } from '../flash.bench';
import type { ClaimRun } from './flash-ceilings';
import {
  LIVE_CONNECTIONS,
  type Options,
  SCENARIO_TITLES,
  SECTION,
  SOLD_OUT,
  WITHOUT_PG_GOAL,
} from './flash-options';
import type { ScenarioRaw } from './flash-scenario';
import { STATEMENT_KINDS } from './flash-stack';
import { type Ceilings, summarizeWave, type Wave, type WaveSummary } from './flash-summary';

/* The run summarized: failures and notes, then the report's tables and its JSON line. */

type Measured = Awaited<ReturnType<typeof measure>>;
type Value = string | Omit<TableRow, 'figure'>;

/** Rows from figure → measured (or the row's other cells). */
const rows = (figures: Record<string, Value>): TableRow[] =>
  Object.entries(figures).map(([figure, v]) =>
    typeof v === 'string' ? { figure, measured: v } : { figure, ...v },
  );
/** Numbers (fmt) and cells already formatted, joined by ' / '. */
const slash = (...values: (number | string | null)[]) =>
  values.map((v) => (typeof v === 'string' ? v : fmt(v))).join(' / ');
const ms = (value: number | null) => fmt(value, 1);
/** The messages among `list` (the others were false: nothing to say). */
const strings = (list: unknown[]) =>
  list.filter((item): item is string => typeof item === 'string');

const FLUSH_ROW = '  FLUSHALL sent after answers / at ms';
const RELEASE_ROW = 'released by their owners: bookings / units / free after';
type Goals = { units: string; unitsFree: number; withoutPg?: string };

/** What is odd in one wave (not a failure by itself). */
function waveNotes(name: string, { raw, summary: w, twice, statuses, samples }: Wave): string[] {
  const { counter, crash, pending, pendingBefore, apiLog } = raw;
  const seeds = raw.statements.kinds.seed;
  const errors = Object.entries(samples).filter(([key]) => key !== '201' && key !== SOLD_OUT);
  const list = (labels: string[]) => labels.slice(0, 20).join(', ');
  return strings([
    twice.bookings.length > 0 && `units in two live bookings: ${list(twice.bookings)}`,
    twice.answers.length > 0 && `units in two 201 answers: ${list(twice.answers)}`,
    twice.heldBefore.length > 0 && `201s naming units held before: ${list(twice.heldBefore)}`,
    twice.seatsTable.length > 0 && `seats and bookings disagree on: ${list(twice.seatsTable)}`,
    w.wrongAnswers > 0 && `${w.wrongAnswers} 201s whose units differ from the quantity or booking`,
    ...errors.map(([key, text]) => `${statuses[key]} x ${key}, first body: ${text}`),
    w.refusedWhileEnoughFree > 0 &&
      `${w.refusedWhileEnoughFree} refused SOLD_OUT with ${w.freeAtEnd} units free at the end`,
    // One seed per instance each time the count goes missing: a handful. More: no single flight.
    seeds > 10 && `${seeds} admission-count seeds on the wire: no single flight`,
    counter?.value != null &&
      counter.value < w.freeAtEnd &&
      `Redis admission count ${counter.value} < ${w.freeAtEnd} free (TTL ${counter.pttlMs} ms)`,
    crash &&
      `the API died (code ${crash.code}, signal ${crash.signal}): ${crash.fatal ?? '-'}; restarted`,
    !!pending && `${pending} outbox messages pending 30 s after it`,
    pendingBefore > 0 && `${pendingBefore} outbox messages pending before it`,
    apiLog.levels.error + apiLog.levels.fatal > 0 &&
      `API errors: ${JSON.stringify(apiLog.messages)}`,
  ]).map((note) => `${name}: ${note}`);
}

/** What is odd in the scenario as a whole. */
function scenarioNotes(
  options: Options,
  raw: ScenarioRaw,
  w1: WaveSummary,
  w2: WaveSummary | null,
) {
  const { release, flush, scenario } = raw;
  return strings([
    w1.unitsSold !== options.capacity &&
      `wave 1 sold ${w1.unitsSold} of ${options.capacity} units (${w1.freeAtEnd} left free; ` +
        `smallest refused quantity ${w1.smallestRefusedQuantity ?? '-'})`,
    (w1.unitsSold !== w1.unitsHeldInTable || w1.unitsSold !== w1.unitsInLiveBookings) &&
      `wave 1: 201s sold ${w1.unitsSold} units, seats table ${w1.unitsHeldInTable}, ` +
        `live bookings ${w1.unitsInLiveBookings}`,
    release.failures > 0 &&
      `${release.failures} DELETE /bookings/{id} did not release, first: ${release.firstFailure}`,
    release.freeAtWave2 !== release.units + w1.freeAtEnd &&
      `${release.freeAtWave2} units free after the releases, not ${release.units} + ${w1.freeAtEnd}`,
    w2 &&
      !wave2Fits(w2, release.freeAtWave2) &&
      `wave 2 sold ${w2.unitsSold} of ${release.freeAtWave2} free units; ${w2.freeAtEnd} left ` +
        `while a request for ${w2.smallestRefusedQuantity ?? '-'} was refused`,
    scenario !== 'stopped' &&
      (w1.fallbacks ?? 0) > 0 &&
      `wave 1: ${w1.fallbacks} holds fell back to PostgreSQL alone with Redis up`,
    !!w1.redisNoscript &&
      `wave 1: ${w1.redisNoscript} EVALSHA answered NOSCRIPT (sent again as EVAL)`,
    flush && flush.result !== 'ok' && `FLUSHALL ${flush.result}`,
    scenario === 'flush' &&
      !flush &&
      `no FLUSHALL: wave 1 had fewer than ${options.flushAfter} answers`,
  ]);
}

/** Wave 2 sold what was free, or as many as fit: what is left is smaller than every refusal. */
function wave2Fits(w2: WaveSummary, free: number) {
  const smallest = w2.smallestRefusedQuantity;
  return w2.unitsSold === free || (smallest !== null && w2.freeAtEnd < smallest);
}

/** The failures (exit 1) of each wave; a 201 count the metric disagrees with is a note. */
function waveFailures(options: Options, waves: WaveSummary[], notes: string[]): string[] {
  return waves.flatMap((w, i) => {
    const cap = i === 0 ? options.capacity : w.freeAtStart;
    if (w.heldMetric !== null && w.holds !== w.heldMetric) {
      notes.push(`wave ${i + 1}: ${w.holds} 201s, seatlock_holds_total{held} rose ${w.heldMetric}`);
    }
    return strings([
      w.unitsTwice > 0 && `${w.unitsTwice} units twice`,
      (w.oversold > 0 || w.unitsSold > cap) &&
        `oversold (${w.unitsSold} units sold of ${w.freeAtStart} free)`,
      w.wrongAnswers > 0 && `${w.wrongAnswers} wrong 201s`,
      w.serverErrors > 0 && `${w.serverErrors} 5xx`,
      w.lost > 0 && `${w.lost} requests lost`,
      w.apiDied && 'the API died',
    ]).map((failure) => `wave ${i + 1}: ${failure}`);
  });
}

/** A wave's details for the JSON: statuses, the wire, Redis's commands, the metrics, the log. */
const waveDetails = ({ raw, statuses }: Wave) => ({
  statuses,
  wire: raw.wire,
  statements: raw.statements,
  wireDrained: raw.wireDrained,
  redisCommandsByName: raw.redis,
  holdMetrics: raw.metrics,
  apiLog: raw.apiLog,
});

function summarizeScenario(options: Options, raw: ScenarioRaw, ceilings: Ceilings) {
  const { capacity } = options;
  const { release, scenario } = raw;
  const start1 = { freeAtStart: capacity, liveBefore: [], overloadAllowed: scenario === 'stopped' };
  const wave1 = summarizeWave(raw.wave1, capacity, start1, ceilings);
  const liveBefore = liveBookings(release.rowsAfter.bookings);
  const start2 = { freeAtStart: release.freeAtWave2, liveBefore, overloadAllowed: false };
  const wave2 = raw.wave2 && summarizeWave(raw.wave2, capacity, start2, ceilings);
  const [w1, w2] = [wave1.summary, wave2?.summary ?? null];
  const anomalies = [
    ...waveNotes('wave 1', wave1),
    ...(wave2 ? waveNotes('wave 2', wave2) : []),
    ...scenarioNotes(options, raw, w1, w2),
  ];
  const failures = waveFailures(options, w2 ? [w1, w2] : [w1], anomalies);
  const { bookings, units, failures: releaseFailures, freeAtWave2 } = release;
  const summary = {
    scenario,
    wave1: w1,
    release: { bookings, units, failures: releaseFailures, freeAtWave2 },
    wave2: w2,
    wave1SoldOut: w1.unitsSold === capacity,
    wave2Fits: w2 && wave2Fits(w2, freeAtWave2),
    flush: raw.flush,
  };
  const wave2Details = wave2 && waveDetails(wave2);
  const details = { eventId: raw.eventId, wave1: waveDetails(wave1), wave2: wave2Details };
  return { ok: failures.length === 0, summary, details, anomalies, failures };
}

/** The ceilings of the report: the best unit claim, /health/live, raw DECRBY. */
function ceilingSummary(m: Measured) {
  const best = m.unitClaims.runs.reduce<ClaimRun | null>(
    (top, run) => (!top || (run.unitsPerSecond ?? 0) > (top.unitsPerSecond ?? 0) ? run : top),
    null,
  );
  const { live } = m;
  return {
    unitClaim: best && {
      script: best.script,
      clients: best.clients,
      unitsPerSecond: best.unitsPerSecond,
      tps: best.tps,
    },
    unitClaimRuns: m.unitClaims.runs,
    live: live && {
      perSecond: live.perSecond,
      connections: live.connections,
      seconds: live.seconds,
      p50Ms: live.latencyMs.p50,
      errors: live.errors,
    },
    redis: m.redisCeiling,
  };
}

export function summarize(options: Options, m: Measured) {
  const ceilings = ceilingSummary(m);
  const scenarios = m.scenarios.map((raw) =>
    summarizeScenario(options, raw, {
      unitsPerSecond: ceilings.unitClaim?.unitsPerSecond ?? null,
      live: ceilings.live?.perSecond ?? null,
      redis: m.redisCeiling.perSecond,
    }),
  );
  const notes = strings([
    m.unitClaims.skipped && `no pgbench ceiling: ${m.unitClaims.skipped}`,
    m.redisCeiling.skipped && `no Redis ceiling: ${m.redisCeiling.skipped}`,
    m.live && m.live.errors > 0 && `/health/live ceiling: ${m.live.errors} errors`,
    ...m.apiCrashes.map(
      (c) =>
        `the API died (code ${c.code}, signal ${c.signal}): ${c.fatal ?? '-'}; ` +
        'peak RSS is that of the processes that lived',
    ),
  ]);
  const { registrationMs, peakRssMB, apiCrashes } = m;
  const ok = scenarios.every((s) => s.ok);
  return { ok, scenarios, ceilings, registrationMs, peakRssMB, apiCrashes, notes };
}
type Result = ReturnType<typeof summarize>;
type Scenario = Result['scenarios'][number];

/** The ceilings' cells, beside each wave's rates. */
function ceilingCells({ unitClaim, live, redis }: Result['ceilings']) {
  return {
    claim: unitClaim
      ? `${perSecond(unitClaim.unitsPerSecond)} (${unitClaim.clients} cl.)`
      : '- (no pgbench run)',
    live: live ? `${perSecond(live.perSecond)} (${live.connections} conn.)` : '-',
    redis: `${perSecond(redis.perSecond)} (${redis.tool}, ${redis.clients} cl.)`,
  };
}

/** What a wave sold and refused, and whether anything went wrong. */
function outcomeRows(title: string, w: WaveSummary, goals: Goals): TableRow[] {
  const refusals = Object.entries(w.refusals).map(([key, n]) => `${key}: ${fmt(n)}`);
  return [
    ...(w.apiDied
      ? rows({ [`${title}: THE API DIED IN THE WAVE`]: { measured: 'yes', goal: 'no' } })
      : []),
    ...rows({
      [`${title}: units sold (201s) / seats table / live bookings`]: {
        measured: slash(w.unitsSold, w.unitsHeldInTable, w.unitsInLiveBookings),
        goal: goals.units,
      },
      '  requests / holds (201) / units free at start / free at end': slash(
        w.requests,
        w.holds,
        w.freeAtStart,
        w.freeAtEnd,
      ),
    }),
    ...(refusals.length ? refusals : ['-']).map((text, i) => ({
      figure: i === 0 ? '  refusals by status and code' : '',
      measured: text,
    })),
    ...rows({
      '  units twice / oversold / wrong 201s / lost requests': {
        measured: slash(w.unitsTwice, w.oversold, w.wrongAnswers, w.lost),
        goal: '0 / 0 / 0 / 0',
      },
      '  refused SOLD_OUT while enough units were free (at the end)': {
        measured: fmt(w.refusedWhileEnoughFree),
        goal: '0',
      },
      '  losers answered without a PostgreSQL statement (wire, at least)': {
        measured: percent(w.withoutPostgres),
        goal: goals.withoutPg,
      },
      '    metric: sold_out_redis share / sold_out_redis / sold_out_database / fallbacks': slash(
        percent(w.soldOutRedisShare),
        w.soldOutRedis,
        w.soldOutDatabase,
        w.fallbacks,
      ),
      '  Redis admission count before / after (TTL ms) / PostgreSQL free after':
        `${w.admissionBefore ?? 'none'} / ${w.admissionAfter ?? 'none'} ` +
        `(${w.admissionAfterTtlMs ?? '-'}) / ${fmt(w.freeAtEnd)}`,
    }),
  ];
}

/** How fast a wave sold, beside the ceilings; what it cost PostgreSQL and Redis. */
function speedRows(w: WaveSummary, c: Result['ceilings'], goals: Goals): TableRow[] {
  const cells = ceilingCells(c);
  const latency = (l: { p50: number | null; p99: number | null }) => slash(ms(l.p50), ms(l.p99));
  const atCeiling = w.capacityAtCeilingMs ?? undefined;
  const redis = [w.redisScripts, w.redisNoscript, w.redisCommands, w.redisCommandsPerRequest];
  return rows({
    '  time to sell out (last 201) / whole wave, ms': {
      measured: slash(ms(w.sellOutMs), ms(w.wallMs)),
      ceiling: atCeiling && `${ms(atCeiling)} ms (${fmt(goals.unitsFree)} units)`,
    },
    '  units/s to sell out vs pgbench unit claim (physical limit)': {
      measured: perSecond(w.unitsPerSecond),
      ceiling: cells.claim,
      ratio: w.vsUnitClaim,
    },
    '  requests/s in the wave vs /health/live (same server)': {
      measured: perSecond(w.requestsPerSecond),
      ceiling: cells.live,
      ratio: w.vsLive,
    },
    '    vs raw DECRBY on the same redis-server': { ceiling: cells.redis, ratio: w.vsRedis },
    '  latency p50 / p99 ms: all; 201s; refusals': [
      latency({ p50: w.p50Ms, p99: w.p99Ms }),
      latency(w.latencySoldMs),
      latency(w.latencyRefusedMs),
    ].join('; '),
    '  PostgreSQL statements / round trips on the wire in the wave': slash(
      w.statements,
      w.roundTrips,
    ),
    '    hold calls / admission seeds / outbox fan-out / other': slash(
      ...STATEMENT_KINDS.map((kind) => w.statementsByKind[kind]),
    ),
    '    per unit sold / per request': slash(
      fmt(w.statementsPerUnit, 2),
      fmt(w.statementsPerRequest, 3),
    ),
    '    incl. the outbox fan-out / per unit sold': slash(
      w.statementsWithFanOut,
      fmt(w.statementsWithFanOutPerUnit, 2),
    ),
    '  Redis: scripts sent (NOSCRIPT) / all commands / per request':
      w.redisCommands === null
        ? 'server stopped'
        : `${fmt(redis[0])} (${fmt(redis[1])}) / ${fmt(redis[2])} / ${fmt(redis[3], 2)}`,
    '  machine busy cores in the wave (of 2) / load average before': slash(
      fmt(w.machineCores, 2),
      w.loadAverageBefore?.map((n) => n.toFixed(2)).join(' ') ?? '-',
    ),
  });
}

/** A wave's rows: what it sold and refused; how fast, beside the ceilings; what it cost. */
function waveRows(title: string, w: WaveSummary, c: Result['ceilings'], goals: Goals): TableRow[] {
  return [...outcomeRows(title, w, goals), ...speedRows(w, c, goals)];
}

/** One scenario: wave 1, the FLUSHALL, the releases, wave 2. */
function scenarioSection(options: Options, r: Result, s: Scenario): ReportSection {
  const { wave1, wave2, release, flush, scenario } = s.summary;
  const normal = scenario === 'normal';
  const cap = fmt(options.capacity);
  const goals1 = {
    units: normal ? `exactly ${cap}` : `<= ${cap}`,
    unitsFree: options.capacity,
    withoutPg: normal ? `>= ${fmt(WITHOUT_PG_GOAL * 100, 1)} %` : undefined,
  };
  const free2 = release.freeAtWave2;
  const goals2 = { units: `exactly ${fmt(free2)}`, unitsFree: free2 };
  return {
    title:
      `Flash sale, ${SCENARIO_TITLES[scenario]}: ${fmt(options.customers)} x POST /bookings ` +
      `{section: '${SECTION}', quantity: 1-4} at once on ${cap} GA units (seed ${options.seed}); ` +
      `wave 2: ${fmt(wave2?.requests ?? 0)} customers without a booking`,
    rows: [
      ...waveRows('wave 1', wave1, r.ceilings, goals1),
      ...(flush ? rows({ [FLUSH_ROW]: slash(flush.afterAnswers, ms(flush.atMs)) }) : []),
      { figure: '-' },
      ...rows({ [RELEASE_ROW]: slash(release.bookings, release.units, free2) }),
      ...(wave2
        ? [
            { figure: '-' },
            ...waveRows('wave 2', wave2, r.ceilings, goals2),
            ...rows({
              '  sold what was free, or as many as fit': {
                measured: s.summary.wave2Fits ? 'yes' : 'no',
                goal: 'yes',
              },
            }),
          ]
        : []),
    ],
    lines: s.failures.map((f) => `FAILED ${f}`),
    notes: s.anomalies,
  };
}

/** The ceilings, the API's peak memory, the registration time. */
function ceilingSection(options: Options, r: Result): ReportSection {
  const { live, redis, unitClaimRuns } = r.ceilings;
  return {
    title: 'Ceilings (same run; pgbench and redis-benchmark with the API stopped)',
    rows: [
      ...unitClaimRuns.map((run) => ({
        figure: `pgbench ${run.script}, ${run.clients} clients (units/s, transactions/s)`,
        ceiling: `${perSecond(run.unitsPerSecond)}, ${perSecond(run.tps)}`,
      })),
      ...rows({
        [`GET /health/live, ${LIVE_CONNECTIONS} connections (p50 ms)`]: {
          ceiling: live ? `${perSecond(live.perSecond)} (${fmt(live.p50Ms, 1)})` : '-',
        },
        [`raw DECRBY, ${redis.tool}, ${redis.clients} clients`]: {
          ceiling: perSecond(redis.perSecond),
        },
        'API peak RSS (VmHWM) MB': { measured: fmt(r.peakRssMB, 1), goal: '<= 250' },
        [`registration of ${fmt(options.customers)} customers (not measured), ms`]: fmt(
          r.registrationMs,
        ),
      }),
    ],
    lines: [
      'pgbench: one UPDATE of the first free unit rows (FOR UPDATE SKIP LOCKED) per transaction; ' +
        'no booking row, no count, no cap',
    ],
    notes: r.notes,
  };
}

/** The report's sections (the last line OK or FAILED) and its JSON line. */
export function report(
  options: Options,
  r: Result,
  load: { start: number[] | null; end: number[] | null },
) {
  const byScenario = <T>(pick: (s: Scenario) => T) =>
    Object.fromEntries(r.scenarios.map((s) => [s.summary.scenario, pick(s)]));
  const sections: ReportSection[] = [
    ...r.scenarios.map((s) => scenarioSection(options, r, s)),
    ceilingSection(options, r),
    { lines: [r.ok ? 'OK' : 'FAILED'] },
    {
      lines: [
        `load average (1, 5, 15 min): ${load.start?.join(' ') ?? '-'} at the start, ` +
          `${load.end?.join(' ') ?? '-'} at the end`,
      ],
    },
  ];
  const { customers, capacity, wave2, seed } = options;
  const json = {
    benchmark: 'flash',
    ok: r.ok,
    scenarios: options.scenarios,
    ...{ customers, capacity, wave2, seed, section: SECTION },
    summary: byScenario((s) => s.summary),
    ceilings: r.ceilings,
    ...{ peakRssMB: r.peakRssMB, apiCrashes: r.apiCrashes, registrationMs: r.registrationMs },
    loadAverage: load,
    details: byScenario((s) => s.details),
    failures: byScenario((s) => s.failures),
    anomalies: { ...byScenario((s) => s.anomalies), ceilings: r.notes },
  };
  return { sections, json: options.json ? json : undefined };
}
