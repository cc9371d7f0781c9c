import {
  type BookingRow,
  liveBookings,
  seatsDisagreeing,
  twice,
} from '../../support/bench/bench-state';
import { latencySummary, ratio, round } from '../../support/bench/stats';
import { codeOf, parseBody, tallyShots } from '../../support/bench/wave';
import { OVERLOADED, SOLD_OUT } from './flash-options';
import type { WaveRaw } from './flash-wave';

/* One wave checked: what its answers say against what the tables hold; its figures. */

export type Ceilings = { unitsPerSecond: number | null; live: number | null; redis: number | null };
type Sale = { customer: number; quantity: number; end: number; id: string; seats: string[] };

/** The 201s with the booking and units they name. */
function sales(raw: WaveRaw): Sale[] {
  return raw.wave.shots
    .filter((shot) => shot.status === '201')
    .map((shot) => {
      const body = parseBody<{ id: string; seats: string[] }>(shot.text);
      return { ...shot, id: body.id ?? '', seats: body.seats ?? [] };
    });
}

/**
 * Units twice: in two live bookings, in two 201s of this wave, in a 201 and a booking live before
 * the wave; and units where the seats table and the bookings disagree.
 */
function unitsTwice(raw: WaveRaw, answers: Sale[], liveBefore: BookingRow[]) {
  const before = new Set(liveBefore.flatMap((booking) => booking.seat_labels));
  const live = liveBookings(raw.rows.bookings);
  return {
    bookings: twice(live.flatMap((booking) => booking.seat_labels)),
    answers: twice(answers.flatMap((answer) => answer.seats)),
    heldBefore: answers.flatMap((a) => a.seats).filter((label) => before.has(label)),
    seatsTable: seatsDisagreeing(raw.rows.seats, live),
  };
}

/** What one wave's answers say and what the tables hold afterwards, checked against each other. */
export function checkWave(
  raw: WaveRaw,
  capacity: number,
  options: { overloadAllowed: boolean; freeAtStart: number; liveBefore: BookingRow[] },
) {
  const { codes: statuses, samples } = tallyShots(raw.wave.shots);
  const answers = sales(raw);
  const live = liveBookings(raw.rows.bookings);
  const liveById = new Map(live.map((booking) => [booking.id, booking]));
  // A 201 must name its booking as stored, live, with exactly the quantity asked for.
  const wrongAnswers = answers.filter((answer) => {
    const booking = liveById.get(answer.id);
    return (
      answer.seats.length !== answer.quantity ||
      !booking ||
      booking.seat_labels.length !== answer.quantity ||
      answer.seats.some((label) => !booking.seat_labels.includes(label))
    );
  });
  const units = raw.rows.seats;
  const unitsHeldInTable = units.filter((unit) => unit.status !== 'free').length;
  const unitsInLiveBookings = live.reduce((sum, booking) => sum + booking.seat_labels.length, 0);
  const freeAtEnd = units.length - unitsHeldInTable;
  const refused = raw.wave.shots.filter((shot) => codeOf(shot) === SOLD_OUT);
  const refusedQuantities = refused.map((shot) => shot.quantity);
  const serverErrors = Object.entries(statuses)
    .filter(([key]) => key.startsWith('5') && !(options.overloadAllowed && key === OVERLOADED))
    .reduce((sum, [, n]) => sum + n, 0);
  return {
    statuses,
    samples,
    answers,
    unitsSold: answers.reduce((sum, answer) => sum + answer.quantity, 0),
    unitsHeldInTable,
    unitsInLiveBookings,
    freeAtStart: options.freeAtStart,
    freeAtEnd,
    smallestRefused: refusedQuantities.length ? Math.min(...refusedQuantities) : null,
    // Refused SOLD_OUT although, even at the end of the wave (units only ever left the pool
    // during it), enough units were free for that request.
    refusedWhileFree: refusedQuantities.filter((q) => q <= freeAtEnd).length,
    twice: unitsTwice(raw, answers, options.liveBefore),
    wrongAnswers: wrongAnswers.length,
    oversold: Math.max(0, unitsInLiveBookings - capacity, unitsHeldInTable - capacity),
    lost: raw.wave.shots.filter((shot) => shot.status.startsWith('error')).length,
    serverErrors,
  };
}
export type WaveCheck = ReturnType<typeof checkWave>;

/** The wave's statement and Redis figures. */
function wireFigures(raw: WaveRaw, check: WaveCheck) {
  const holds = check.answers.length;
  const losers = raw.wave.shots.length - holds;
  const redis = raw.redis;
  const redisAll = redis ? Object.values(redis).reduce((sum, c) => sum + c.calls, 0) : null;
  const statements = raw.wire.statements;
  const kinds = raw.statements.kinds;
  // Every statement in the wave but the winners' holds and the outbox's fan-out charged to a
  // loser (a request makes at most one hold call and one seed): a lower bound of those without any.
  const chargedToLosers = Math.min(losers, Math.max(0, statements - kinds.outbox - holds));
  const perUnit = (n: number) => (check.unitsSold > 0 ? round(n / check.unitsSold, 2) : null);
  const requests = raw.wave.shots.length;
  return {
    /** At least this share of losers cost no statement, by the wire. */
    withoutPostgres: losers > 0 && !raw.crash ? round(1 - chargedToLosers / losers, 4) : null,
    /** Losers Redis answered, by the API's metric (sold_out_redis), seeding or not. */
    soldOutRedisShare:
      losers > 0 && raw.metrics ? round(raw.metrics.sold_out_redis / losers, 4) : null,
    statementsByKind: kinds,
    statements,
    roundTrips: raw.wire.roundTrips,
    newConnections: raw.wire.connections,
    statementsPerUnit: perUnit(statements),
    statementsPerRequest: requests ? round(statements / requests, 3) : null,
    statementsWithFanOut: raw.wireDrained.statements,
    statementsWithFanOutPerUnit: perUnit(raw.wireDrained.statements),
    redisScripts: redis ? (redis.evalsha?.calls ?? 0) + (redis.eval?.calls ?? 0) : null,
    redisNoscript: redis ? (redis.evalsha?.failed ?? 0) : null,
    redisCommands: redisAll,
    redisCommandsPerRequest: redisAll === null ? null : round(redisAll / requests, 2),
  };
}

/** The wave's times, rates and latencies, beside the ceilings. */
function speedFigures(raw: WaveRaw, capacity: number, check: WaveCheck, ceilings: Ceilings) {
  const shots = raw.wave.shots;
  const wallMs = round(raw.wave.wallMs) ?? 0;
  const lastSale = check.answers.reduce((max, answer) => Math.max(max, answer.end), 0);
  const sellOutMs = check.answers.length > 0 ? round(lastSale) : null;
  const unitsPerSecond = sellOutMs ? round((check.unitsSold * 1000) / sellOutMs, 1) : null;
  const requestsPerSecond = wallMs > 0 ? round((shots.length * 1000) / wallMs, 1) : null;
  const latency = latencySummary(shots.map((shot) => shot.ms));
  const latencyOf = (sold: boolean) =>
    latencySummary(shots.filter((s) => (s.status === '201') === sold).map((s) => s.ms));
  return {
    sellOutMs,
    wallMs,
    unitsPerSecond,
    requestsPerSecond,
    vsUnitClaim: ratio(unitsPerSecond, ceilings.unitsPerSecond),
    vsLive: ratio(requestsPerSecond, ceilings.live),
    vsRedis: ratio(requestsPerSecond, ceilings.redis),
    capacityAtCeilingMs: ceilings.unitsPerSecond
      ? round((capacity * 1000) / ceilings.unitsPerSecond, 1)
      : null,
    p50Ms: latency.p50,
    p99Ms: latency.p99,
    maxMs: latency.max,
    latencySoldMs: latencyOf(true),
    latencyRefusedMs: latencyOf(false),
  };
}

/** A wave's summary (its JSON): the check's counts, the metrics, the wire, the speed. */
export function summarizeWave(
  raw: WaveRaw,
  capacity: number,
  check: WaveCheck,
  ceilings: Ceilings,
) {
  const { twice: t } = check;
  const wire = wireFigures(raw, check);
  const speed = speedFigures(raw, capacity, check, ceilings);
  return {
    apiDied: raw.crash !== null,
    requests: raw.wave.shots.length,
    holds: check.answers.length,
    losers: raw.wave.shots.length - check.answers.length,
    unitsSold: check.unitsSold,
    unitsHeldInTable: check.unitsHeldInTable,
    unitsInLiveBookings: check.unitsInLiveBookings,
    freeAtStart: check.freeAtStart,
    freeAtEnd: check.freeAtEnd,
    smallestRefusedQuantity: check.smallestRefused,
    refusedWhileEnoughFree: check.refusedWhileFree,
    refusals: Object.fromEntries(Object.entries(check.statuses).filter(([key]) => key !== '201')),
    unitsTwice: t.bookings.length + t.answers.length + t.heldBefore.length + t.seatsTable.length,
    oversold: check.oversold,
    wrongAnswers: check.wrongAnswers,
    lost: check.lost,
    serverErrors: check.serverErrors,
    /** The API's /metrics over the wave; null when the API died in it. */
    soldOutRedis: raw.metrics?.sold_out_redis ?? null,
    soldOutDatabase: raw.metrics?.sold_out_database ?? null,
    heldMetric: raw.metrics?.held ?? null,
    fallbacks: raw.metrics?.fallbacks ?? null,
    /** The admission counter in Redis before and after the wave (null: absent or not asked). */
    admissionBefore: raw.counterBefore?.value ?? null,
    admissionAfter: raw.counter?.value ?? null,
    admissionAfterTtlMs: raw.counter?.pttlMs ?? null,
    ...speed,
    ...wire,
    machineCores: raw.wave.machineCores,
    loadAverageBefore: raw.loadAverageBefore,
  };
}
export type WaveSummary = ReturnType<typeof summarizeWave>;
