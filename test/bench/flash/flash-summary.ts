import { liveBookings } from '../../support/bench/bench-state';
import {
  type Ceilings,
  checkWave,
  summarizeWave,
  type WaveCheck,
  type WaveSummary,
} from './flash-checks';
import type { ClaimRun } from './flash-ceilings';
import type { measure } from '../flash.bench';
import { type Options, SOLD_OUT } from './flash-options';
import type { ScenarioRaw } from './flash-scenario';
import type { WaveRaw } from './flash-wave';

/* A scenario's and the run's summary: the waves checked, what failed, what is odd. */

/** What is odd in one wave (not a failure by itself). */
function waveNotes(name: string, raw: WaveRaw, check: WaveCheck): string[] {
  const out: string[] = [];
  const { bookings, answers, heldBefore, seatsTable } = check.twice;
  if (bookings.length) out.push(`${name}: units in two live bookings: ${bookings.slice(0, 20)}`);
  if (answers.length) out.push(`${name}: units in two 201 answers: ${answers.slice(0, 20)}`);
  if (heldBefore.length) {
    out.push(`${name}: 201s naming units held before the wave: ${heldBefore.slice(0, 20)}`);
  }
  if (seatsTable.length) {
    out.push(`${name}: seats and bookings disagree on: ${seatsTable.slice(0, 20).join(', ')}`);
  }
  if (check.wrongAnswers) {
    out.push(`${name}: ${check.wrongAnswers} 201s whose units differ from the quantity or booking`);
  }
  for (const [key, text] of Object.entries(check.samples)) {
    if (key === '201' || key === SOLD_OUT) continue;
    out.push(`${name}: ${check.statuses[key]} x ${key}, first body: ${text}`);
  }
  if (check.refusedWhileFree > 0) {
    out.push(
      `${name}: ${check.refusedWhileFree} requests refused SOLD_OUT although ${check.freeAtEnd} ` +
        'units were still free at the end of the wave (enough for each of them)',
    );
  }
  const seeds = raw.statements.kinds.seed;
  // One seed per instance each time the count goes missing (start, TTL, FLUSHALL): a handful. Far
  // more means the requests that found it missing each read PostgreSQL (no single flight).
  if (seeds > 10) {
    out.push(
      `${name}: ${seeds} admission-count seeds (SELECT seatlock_units_available) on the wire: ` +
        'each request that found the Redis counter missing read PostgreSQL (no single flight)',
    );
  }
  const count = raw.counter?.value;
  if (count !== undefined && count !== null && count < check.freeAtEnd) {
    out.push(
      `${name}: the Redis admission count ended at ${count} while PostgreSQL had ` +
        `${check.freeAtEnd} units free (it runs low until its TTL, ${raw.counter?.pttlMs} ms left)`,
    );
  }
  if (raw.crash) {
    out.push(
      `${name}: the API died in the wave (exit code ${raw.crash.code}, signal ` +
        `${raw.crash.signal}): ${raw.crash.fatal ?? '-'}; started again for what follows`,
    );
  }
  if (raw.pending) out.push(`${name}: ${raw.pending} outbox messages pending 30 s after it`);
  if (raw.pendingBefore > 0) {
    out.push(`${name}: ${raw.pendingBefore} outbox messages pending before it`);
  }
  if (raw.apiLog.levels.error + raw.apiLog.levels.fatal > 0) {
    out.push(`${name}: API errors: ${JSON.stringify(raw.apiLog.messages)}`);
  }
  return out;
}

type Wave = { raw: WaveRaw; check: WaveCheck; summary: WaveSummary };

/** Wave 1 checked from a full section, wave 2 from what the releases freed. */
function checkWaves(options: Options, raw: ScenarioRaw, ceilings: Ceilings) {
  const wave = (waveRaw: WaveRaw, check: WaveCheck): Wave => ({
    raw: waveRaw,
    check,
    summary: summarizeWave(waveRaw, options.capacity, check, ceilings),
  });
  const check1 = checkWave(raw.wave1, options.capacity, {
    overloadAllowed: raw.scenario === 'stopped',
    freeAtStart: options.capacity,
    liveBefore: [],
  });
  const wave2Check =
    raw.wave2 &&
    checkWave(raw.wave2, options.capacity, {
      overloadAllowed: false,
      freeAtStart: raw.release.freeAtWave2,
      liveBefore: liveBookings(raw.release.rowsAfter.bookings),
    });
  return {
    wave1: wave(raw.wave1, check1),
    wave2: raw.wave2 && wave2Check ? wave(raw.wave2, wave2Check) : null,
  };
}

/** What is odd in the scenario as a whole. */
function scenarioNotes(
  options: Options,
  raw: ScenarioRaw,
  w1: WaveSummary,
  w2: WaveSummary | null,
  wave2Fits: boolean | null,
) {
  const out: string[] = [];
  const { release } = raw;
  if (w1.unitsSold !== options.capacity) {
    out.push(
      `wave 1 sold ${w1.unitsSold} of ${options.capacity} units (${w1.freeAtEnd} left free; ` +
        `smallest refused quantity ${w1.smallestRefusedQuantity ?? '-'})`,
    );
  }
  if (w1.unitsSold !== w1.unitsHeldInTable || w1.unitsSold !== w1.unitsInLiveBookings) {
    out.push(
      `wave 1: 201s sold ${w1.unitsSold} units, the seats table holds ${w1.unitsHeldInTable}, ` +
        `live bookings ${w1.unitsInLiveBookings}`,
    );
  }
  if (release.failures > 0) {
    out.push(
      `${release.failures} DELETE /bookings/{id} did not release, first: ${release.firstFailure}`,
    );
  }
  if (release.freeAtWave2 !== release.units + w1.freeAtEnd) {
    out.push(
      `after the releases ${release.freeAtWave2} units free, expected ${release.units} ` +
        `released + ${w1.freeAtEnd} left by wave 1`,
    );
  }
  if (w2 && wave2Fits === false) {
    out.push(
      `wave 2 sold ${w2.unitsSold} of ${release.freeAtWave2} free units; ${w2.freeAtEnd} ` +
        `left free while a request for ${w2.smallestRefusedQuantity ?? '-'} was refused`,
    );
  }
  if (raw.scenario !== 'stopped' && (w1.fallbacks ?? 0) > 0) {
    out.push(`wave 1: ${w1.fallbacks} holds fell back to PostgreSQL alone with Redis up`);
  }
  if (w1.redisNoscript) {
    out.push(`wave 1: ${w1.redisNoscript} EVALSHA answered NOSCRIPT (sent again as EVAL)`);
  }
  if (raw.flush && raw.flush.result !== 'ok') out.push(`FLUSHALL ${raw.flush.result}`);
  if (raw.scenario === 'flush' && !raw.flush) {
    out.push(`no FLUSHALL: wave 1 had fewer than ${options.flushAfter} answers`);
  }
  return out;
}

/** The failures (exit 1) of each wave; a 201 count the metric disagrees with is a note. */
function waveFailures(options: Options, waves: WaveSummary[], notes: string[]): string[] {
  const failures: string[] = [];
  for (const [i, w] of waves.entries()) {
    const name = `wave ${i + 1}`;
    if (w.unitsTwice > 0) failures.push(`${name}: ${w.unitsTwice} units twice`);
    if (w.oversold > 0 || w.unitsSold > (i === 0 ? options.capacity : w.freeAtStart)) {
      failures.push(`${name}: oversold (${w.unitsSold} units sold of ${w.freeAtStart} free)`);
    }
    if (w.wrongAnswers > 0) failures.push(`${name}: ${w.wrongAnswers} wrong 201s`);
    if (w.serverErrors > 0) failures.push(`${name}: ${w.serverErrors} 5xx`);
    if (w.lost > 0) failures.push(`${name}: ${w.lost} requests lost`);
    if (w.apiDied) failures.push(`${name}: the API died`);
    if (w.heldMetric !== null && w.holds !== w.heldMetric) {
      notes.push(`${name}: ${w.holds} 201s, seatlock_holds_total{held} rose ${w.heldMetric}`);
    }
  }
  return failures;
}

/** A wave's details for the JSON: statuses, the wire, Redis's commands, the metrics, the log. */
function waveDetails({ raw, check }: Wave) {
  return {
    statuses: check.statuses,
    wire: raw.wire,
    statements: raw.statements,
    wireDrained: raw.wireDrained,
    redisCommandsByName: raw.redis,
    holdMetrics: raw.metrics,
    apiLog: raw.apiLog,
  };
}

function summarizeScenario(options: Options, raw: ScenarioRaw, ceilings: Ceilings) {
  const { wave1, wave2 } = checkWaves(options, raw, ceilings);
  const [w1, w2] = [wave1.summary, wave2?.summary ?? null];
  // Wave 2 sold what was free, or as many as fit: what is left is smaller than every refusal.
  const wave2Fits =
    w2 === null
      ? null
      : w2.unitsSold === raw.release.freeAtWave2 ||
        (w2.smallestRefusedQuantity !== null && w2.freeAtEnd < w2.smallestRefusedQuantity);
  const anomalies = [
    ...waveNotes('wave 1', raw.wave1, wave1.check),
    ...(wave2 ? waveNotes('wave 2', wave2.raw, wave2.check) : []),
    ...scenarioNotes(options, raw, w1, w2, wave2Fits),
  ];
  const failures = waveFailures(options, w2 ? [w1, w2] : [w1], anomalies);
  const { bookings, units, failures: releaseFailures, freeAtWave2 } = raw.release;
  const summary = {
    scenario: raw.scenario,
    wave1: w1,
    release: { bookings, units, failures: releaseFailures, freeAtWave2 },
    wave2: w2,
    wave1SoldOut: w1.unitsSold === options.capacity,
    wave2Fits,
    flush: raw.flush,
  };
  const details = {
    eventId: raw.eventId,
    wave1: waveDetails(wave1),
    wave2: wave2 && waveDetails(wave2),
  };
  return { ok: failures.length === 0, summary, details, anomalies, failures };
}

/** What measure() answers: the scenarios, the ceilings, the API's crashes and peak memory. */
export type Measured = Awaited<ReturnType<typeof measure>>;

/** The ceilings of the report: the best unit claim, /health/live, raw DECRBY. */
function ceilingSummary(m: Measured) {
  const best = m.unitClaims.runs.reduce<ClaimRun | null>(
    (top, run) => (!top || (run.unitsPerSecond ?? 0) > (top.unitsPerSecond ?? 0) ? run : top),
    null,
  );
  return {
    unitClaim: best && {
      script: best.script,
      clients: best.clients,
      unitsPerSecond: best.unitsPerSecond,
      tps: best.tps,
    },
    unitClaimRuns: m.unitClaims.runs,
    live: m.live && {
      perSecond: m.live.perSecond,
      connections: m.live.connections,
      seconds: m.live.seconds,
      p50Ms: m.live.latencyMs.p50,
      errors: m.live.errors,
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
  const notes: string[] = [];
  if (m.unitClaims.skipped) notes.push(`no pgbench ceiling: ${m.unitClaims.skipped}`);
  if (m.redisCeiling.skipped) notes.push(`no Redis ceiling: ${m.redisCeiling.skipped}`);
  if (m.live && m.live.errors > 0) notes.push(`/health/live ceiling: ${m.live.errors} errors`);
  for (const crash of m.apiCrashes) {
    notes.push(
      `the API died (exit code ${crash.code}, signal ${crash.signal}): ${crash.fatal ?? '-'}; ` +
        'peak RSS is that of the processes that lived',
    );
  }
  return {
    ok: scenarios.every((s) => s.ok),
    scenarios,
    ceilings,
    registrationMs: m.registrationMs,
    peakRssMB: m.peakRssMB,
    apiCrashes: m.apiCrashes,
    notes,
  };
}
export type Result = ReturnType<typeof summarize>;
