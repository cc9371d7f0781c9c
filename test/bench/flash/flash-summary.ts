import * as state from '../../support/bench/bench-state';
import { latencySummary, ratio, round } from '../../support/bench/stats';
import { codeOf, parseBody, tallyShots } from '../../support/bench/wave';
import { OVERLOADED, SOLD_OUT } from './flash-options';
import type { WaveRaw } from './flash-scenario';

/* One wave checked, its answers against the tables, and its figures (the JSON's wave summary). */

export type Ceilings = { unitsPerSecond: number | null; live: number | null; redis: number | null };
type Start = { freeAtStart: number; liveBefore: state.BookingRow[]; overloadAllowed: boolean };
type Sale = WaveRaw['wave']['shots'][number] & { id: string; seats: string[] };

/** What the 201s and the refusals say against the seats and bookings tables. */
function checkWave(raw: WaveRaw, capacity: number, start: Start, statuses: Record<string, number>) {
  const shots = raw.wave.shots;
  const answers: Sale[] = shots
    .filter((shot) => shot.status === '201')
    .map((shot) => {
      const body = parseBody<{ id: string; seats: string[] }>(shot.text);
      return { ...shot, id: body.id ?? '', seats: body.seats ?? [] };
    });
  const live = state.liveBookings(raw.rows.bookings);
  const liveById = new Map(live.map((booking) => [booking.id, booking.seat_labels]));
  // A 201 must name its booking as stored, live, with exactly the quantity asked for.
  const wrong = answers.filter((a) => {
    const labels = liveById.get(a.id);
    const asked = a.quantity;
    return (
      a.seats.length !== asked ||
      labels?.length !== asked ||
      a.seats.some((l) => !labels.includes(l))
    );
  });
  const sold = answers.flatMap((answer) => answer.seats);
  const before = new Set(start.liveBefore.flatMap((booking) => booking.seat_labels));
  const twice = {
    bookings: state.twice(live.flatMap((booking) => booking.seat_labels)),
    answers: state.twice(sold),
    heldBefore: sold.filter((label) => before.has(label)),
    seatsTable: state.seatsDisagreeing(raw.rows.seats, live),
  };
  const unitsHeldInTable = raw.rows.seats.filter((unit) => unit.status !== 'free').length;
  const unitsInLiveBookings = live.reduce((sum, booking) => sum + booking.seat_labels.length, 0);
  const freeAtEnd = raw.rows.seats.length - unitsHeldInTable;
  const refused = shots.filter((shot) => codeOf(shot) === SOLD_OUT).map((shot) => shot.quantity);
  const serverErrors = Object.entries(statuses)
    .filter(([key]) => key.startsWith('5') && !(start.overloadAllowed && key === OVERLOADED))
    .reduce((sum, [, n]) => sum + n, 0);
  const counts = {
    unitsSold: answers.reduce((sum, answer) => sum + answer.quantity, 0),
    unitsHeldInTable,
    unitsInLiveBookings,
    freeAtStart: start.freeAtStart,
    freeAtEnd,
    smallestRefusedQuantity: refused.length ? Math.min(...refused) : null,
    // Units only ever left the pool in the wave: at the end, these requests would still fit.
    refusedWhileEnoughFree: refused.filter((q) => q <= freeAtEnd).length,
    refusals: Object.fromEntries(Object.entries(statuses).filter(([key]) => key !== '201')),
    unitsTwice: Object.values(twice).reduce((sum, list) => sum + list.length, 0),
    oversold: Math.max(0, unitsInLiveBookings - capacity, unitsHeldInTable - capacity),
    wrongAnswers: wrong.length,
    lost: shots.filter((shot) => shot.status.startsWith('error')).length,
    serverErrors,
  };
  return { answers, twice, counts };
}

/** The wave's statements and Redis commands. */
function wireFigures(raw: WaveRaw, holds: number, unitsSold: number) {
  const requests = raw.wave.shots.length;
  const losers = requests - holds;
  const { redis, wire, statements } = raw;
  const redisAll = redis ? Object.values(redis).reduce((sum, c) => sum + c.calls, 0) : null;
  // All but the winners' holds and the outbox's fan-out charged to a loser (at most one hold call
  // and one seed a request): a lower bound of the losers that cost no statement.
  const chargedToLosers = Math.min(
    losers,
    Math.max(0, wire.statements - statements.kinds.outbox - holds),
  );
  const perUnit = (n: number) => (unitsSold > 0 ? round(n / unitsSold, 2) : null);
  return {
    withoutPostgres: losers > 0 && !raw.crash ? round(1 - chargedToLosers / losers, 4) : null,
    soldOutRedisShare:
      losers > 0 && raw.metrics ? round(raw.metrics.sold_out_redis / losers, 4) : null,
    statementsByKind: statements.kinds,
    statements: wire.statements,
    roundTrips: wire.roundTrips,
    newConnections: wire.connections,
    statementsPerUnit: perUnit(wire.statements),
    statementsPerRequest: requests ? round(wire.statements / requests, 3) : null,
    statementsWithFanOut: raw.wireDrained.statements,
    statementsWithFanOutPerUnit: perUnit(raw.wireDrained.statements),
    redisScripts: redis ? (redis.evalsha?.calls ?? 0) + (redis.eval?.calls ?? 0) : null,
    redisNoscript: redis ? (redis.evalsha?.failed ?? 0) : null,
    redisCommands: redisAll,
    redisCommandsPerRequest: redisAll === null ? null : round(redisAll / requests, 2),
  };
}

/** The wave's times, rates and latencies, beside the ceilings. */
function speedFigures(
  raw: WaveRaw,
  capacity: number,
  answers: Sale[],
  unitsSold: number,
  c: Ceilings,
) {
  const shots = raw.wave.shots;
  const wallMs = round(raw.wave.wallMs) ?? 0;
  const sellOutMs = answers.length ? round(Math.max(...answers.map((a) => a.end), 0)) : null;
  const unitsPerSecond = sellOutMs ? round((unitsSold * 1000) / sellOutMs, 1) : null;
  const requestsPerSecond = wallMs > 0 ? round((shots.length * 1000) / wallMs, 1) : null;
  const latency = latencySummary(shots.map((shot) => shot.ms));
  const latencyOf = (sold: boolean) =>
    latencySummary(shots.filter((s) => (s.status === '201') === sold).map((s) => s.ms));
  return {
    sellOutMs,
    wallMs,
    unitsPerSecond,
    requestsPerSecond,
    vsUnitClaim: ratio(unitsPerSecond, c.unitsPerSecond),
    vsLive: ratio(requestsPerSecond, c.live),
    vsRedis: ratio(requestsPerSecond, c.redis),
    capacityAtCeilingMs: c.unitsPerSecond ? round((capacity * 1000) / c.unitsPerSecond, 1) : null,
    p50Ms: latency.p50,
    p99Ms: latency.p99,
    maxMs: latency.max,
    latencySoldMs: latencyOf(true),
    latencyRefusedMs: latencyOf(false),
  };
}

/** A wave checked: its summary (the JSON), and what its notes need. */
export function summarizeWave(raw: WaveRaw, capacity: number, start: Start, ceilings: Ceilings) {
  const { codes: statuses, samples } = tallyShots(raw.wave.shots);
  const { answers, twice, counts } = checkWave(raw, capacity, start, statuses);
  const summary = {
    apiDied: raw.crash !== null,
    requests: raw.wave.shots.length,
    holds: answers.length,
    losers: raw.wave.shots.length - answers.length,
    ...counts,
    // The API's /metrics over the wave; null when the API died in it.
    soldOutRedis: raw.metrics?.sold_out_redis ?? null,
    soldOutDatabase: raw.metrics?.sold_out_database ?? null,
    heldMetric: raw.metrics?.held ?? null,
    fallbacks: raw.metrics?.fallbacks ?? null,
    // The admission count in Redis before and after (null: absent, or Redis stopped).
    admissionBefore: raw.counterBefore?.value ?? null,
    admissionAfter: raw.counter?.value ?? null,
    admissionAfterTtlMs: raw.counter?.pttlMs ?? null,
    ...speedFigures(raw, capacity, answers, counts.unitsSold, ceilings),
    ...wireFigures(raw, answers.length, counts.unitsSold),
    machineCores: raw.wave.machineCores,
    loadAverageBefore: raw.loadAverageBefore,
  };
  return { raw, summary, twice, statuses, samples };
}
export type Wave = ReturnType<typeof summarizeWave>;
export type WaveSummary = Wave['summary'];
