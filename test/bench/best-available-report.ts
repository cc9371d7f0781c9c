import { liveBookings, type SeatRow, seatsDisagreeing, twice } from '../support/bench/bench-state';
import { fmt, perSecond, present, printReport, row, RULE } from '../support/bench/report';
import { latencySummary, ratio, round } from '../support/bench/stats';
import { parseBody, tallyShots, type WaveTally } from '../support/bench/wave';
import type { Measured } from './best-available.bench';
import { bestCeiling } from './holds-windows';

/* The best-available benchmark's checks of the seats it left, its JSON report and its table. */

export const ROWS = 20;
export const SEATS_PER_ROW = 50;
export const QUANTITY = 2;
const SEATS = ROWS * SEATS_PER_ROW;
/** Bookings a full house takes: every seat sold in pairs (50 seats a row: no seat left over). */
const FULL_HOUSE = Math.floor(SEATS / QUANTITY);
/** Refusals a sold-out house may answer; anything else is noted. */
const SOLD_OUT_CODES = new Set(['BOOKING.SOLD_OUT', 'BOOKING.NOT_ENOUGH_TOGETHER']);

type Options = { contenders: number; warm: boolean; json: boolean };
type Answer = { seats: string[]; nextToEachOther: unknown };

/** Live bookings not two neighbours of one row. */
function apart(seats: readonly SeatRow[], live: ReturnType<typeof liveBookings>): string[] {
  const seatByLabel = new Map(seats.map((seat) => [seat.label, seat]));
  const apartOnes = live.filter((booking) => {
    const taken = booking.seat_labels.map((label) => seatByLabel.get(label));
    if (taken.length !== QUANTITY || taken.some((seat) => !seat)) return true;
    const numbers = taken.map((seat) => seat?.seat_number ?? 0).sort((a, b) => a - b);
    const oneRow = new Set(taken.map((seat) => seat?.row_name)).size === 1;
    return !oneRow || numbers.some((n, i) => i > 0 && n !== numbers[i - 1] + 1);
  });
  return apartOnes.map((booking) => booking.seat_labels.join(' '));
}

/** Per row: free seats whose two neighbours (or the row's end) are unavailable; free runs. */
function leftOver(seats: readonly SeatRow[]) {
  const stranded: string[] = [];
  let [freeLeft, pairsLeft] = [0, 0];
  const rows = new Map<string | null, SeatRow[]>();
  for (const seat of seats) rows.set(seat.row_name, [...(rows.get(seat.row_name) ?? []), seat]);
  for (const row of rows.values()) {
    const free = row.map((seat) => seat.status === 'free');
    let run = 0;
    free.forEach((isFree, i) => {
      if (isFree) freeLeft += 1;
      if (isFree && !free[i - 1] && !free[i + 1]) stranded.push(row[i].label);
      run = isFree ? run + 1 : 0;
      if (!free[i + 1] && run > 0) pairsLeft += Math.floor(run / QUANTITY);
    });
  }
  return { stranded, freeLeft, pairsLeft };
}

type Seats = ReturnType<typeof checkSeats>;

/** What the 201s said and what the seats and bookings tables hold, checked against each other. */
function checkSeats(m: Measured, answers: Answer[]) {
  const live = liveBookings(m.rows.bookings);
  return {
    liveBookings: live.length,
    seatsTwice: {
      bookings: twice(live.flatMap((booking) => booking.seat_labels)),
      answers: twice(answers.flatMap((answer) => answer.seats)),
      seatsTable: seatsDisagreeing(m.rows.seats, live),
    },
    bookingsApart: apart(m.rows.seats, live),
    notNextToEachOther: answers.filter((answer) => answer.nextToEachOther !== true).length,
    ...leftOver(m.rows.seats),
  };
}

/** The wave's figures beside the ceilings: what the suite and the table read. */
function figures(o: Options, m: Measured, tally: WaveTally, seats: Seats) {
  const bookings = tally.statuses['201'] ?? 0;
  const wallMs = round(m.wave.wallMs) ?? 0;
  const holdsPerSecond = wallMs > 0 ? round((bookings * 1000) / wallMs, 1) : null;
  const minimal = bestCeiling(m.ceiling.runs, 'one-statement hold');
  const own = bestCeiling(m.ceiling.runs, 'own-SQL replay');
  const per = (n: number) => (bookings > 0 ? round(n / bookings, 2) : null);
  const { evalsha = { calls: 0, failed: 0 }, eval: evalSource = { calls: 0, failed: 0 } } = m.redis;
  const { seatsTwice: twiceOf } = seats;
  return {
    contenders: o.contenders,
    bookings,
    refusals: Object.fromEntries(Object.entries(tally.codes).filter(([key]) => key !== '201')),
    seatsTwice: twiceOf.bookings.length + twiceOf.answers.length + twiceOf.seatsTable.length,
    bookingsApart: seats.bookingsApart.length + seats.notNextToEachOther,
    ...{ strandedSeats: seats.stranded.length, freeSeatsLeft: seats.freeLeft },
    ...{ pairsLeft: seats.pairsLeft, wallMs },
    ...{ p50Ms: tally.latency.p50, p99Ms: tally.latency.p99, holdsPerSecond },
    minimalCeiling: minimal && { tps: minimal.tps, clients: minimal.clients },
    ownSqlCeiling: own && { tps: own.tps, clients: own.clients },
    vsMinimal: ratio(holdsPerSecond, minimal?.tps),
    vsOwnSql: ratio(holdsPerSecond, own?.tps),
    fullHouseAtCeilingMs: minimal?.tps ? round((FULL_HOUSE * 1000) / minimal.tps, 1) : null,
    ...{ statements: m.wire.wave.statements, roundTrips: m.wire.wave.roundTrips },
    statementsPerBooking: per(m.wire.wave.statements),
    statementsWithFanOut: m.wire.drained.statements,
    statementsWithFanOutPerBooking: per(m.wire.drained.statements),
    /** Scripts sent (EVALSHA + EVAL), those EVALSHA answered NOSCRIPT, every command counted. */
    redisScriptsSent: evalsha.calls + evalSource.calls,
    redisNoscript: evalsha.failed,
    redisCommands: Object.values(m.redis).reduce((sum, c) => sum + c.calls, 0),
    peakRssMB: m.peakRssMB,
  };
}

export function summarize(o: Options, m: Measured) {
  const tally = tallyShots(m.wave.shots);
  const booked = m.wave.shots.filter((shot) => shot.status === '201');
  const answers = booked.map((shot): Answer => {
    const body = parseBody<Answer>(shot.text);
    return { seats: body.seats ?? [], nextToEachOther: body.nextToEachOther };
  });
  const seats = checkSeats(m, answers);
  const summary = figures(o, m, tally, seats);
  const bookings = summary.bookings;
  const broken = Object.keys(tally.statuses).filter((s) => /^(error|5)/.test(s));
  const twiceOrApart = summary.seatsTwice + summary.bookingsApart;
  const ok =
    bookings > 0 && twiceOrApart === 0 && seats.liveBookings === bookings && !broken.length;
  const latencyOf = (wasBooked: boolean) =>
    latencySummary(m.wave.shots.filter((s) => (s.status === '201') === wasBooked).map((s) => s.ms));
  const details = {
    statuses: tally.statuses,
    latencyMs: { all: tally.latency, booked: latencyOf(true), refused: latencyOf(false) },
    wire: m.wire,
    redisCommandsByName: m.redis,
    redisServer: m.redisPrivate
      ? 'private redis-server'
      : 'REDIS_URL (shared: counts every client)',
    holdMetrics: m.metrics,
    outboxPendingAfter: m.pending,
    seats,
    ceilings: m.ceiling,
    apiLog: m.apiLog,
    maxMs: tally.latency.max,
  };
  return { ok, summary, details, anomalies: notes(m, summary, seats, tally.samples) };
}

type Summary = ReturnType<typeof figures>;

/** What the reader should know beside the figures. */
function notes(m: Measured, s: Summary, seats: Seats, samples: Record<string, string>): string[] {
  const listed = (what: string, labels: string[], n = 20) =>
    labels.length > 0 && `${what}: ${labels.slice(0, n).join(', ')}`;
  const refused = Object.values(s.refusals).reduce((sum, n) => sum + n, 0);
  const unexpected = Object.entries(s.refusals).filter(
    ([key]) => !(key.startsWith('409') && SOLD_OUT_CODES.has(key.split(' ')[1])),
  );
  return present([
    listed('seats in two live bookings', seats.seatsTwice.bookings),
    listed('seats in two 201 answers', seats.seatsTwice.answers),
    listed('seats and bookings disagree on', seats.seatsTwice.seatsTable),
    seats.bookingsApart.length > 0 &&
      `bookings not adjacent in one row: ${seats.bookingsApart.slice(0, 10).join('; ')}`,
    seats.notNextToEachOther > 0 &&
      `${seats.notNextToEachOther} answers with nextToEachOther other than true`,
    seats.liveBookings !== s.bookings &&
      `${seats.liveBookings} live bookings stored for ${s.bookings} 201s`,
    listed('stranded free seats', seats.stranded, Infinity),
    refused > 0 &&
      seats.pairsLeft > 0 &&
      `${refused} requests refused while ${seats.pairsLeft} pairs of seats were left`,
    ...unexpected.map(([key, n]) => `${n} x ${key}, first body: ${samples[key]}`),
    m.pending > 0 && `${m.pending} outbox messages pending 30 s after the wave`,
    m.pendingBefore > 0 && `${m.pendingBefore} outbox messages pending before the wave`,
    s.redisNoscript > 0 &&
      `${s.redisNoscript} EVALSHA answered NOSCRIPT in the wave and were sent again as EVAL ` +
        '(the lock scripts were not in the script cache)',
    m.apiLog.levels.error + m.apiLog.levels.fatal > 0 &&
      `API errors during the wave: ${JSON.stringify(m.apiLog.messages)}`,
    !!m.ceiling.skipped && `no pgbench ceiling: ${m.ceiling.skipped}`,
    !m.redisPrivate && 'REDIS_URL is shared: its commandstats count every client',
  ]);
}

function tableRows(s: Summary, r: ReturnType<typeof summarize>) {
  const perRequest = (n: number) => fmt(n / s.contenders, 2);
  const at = (c: { tps: number | null; clients: number } | null) =>
    c ? `${perSecond(c.tps)} (${c.clients} cl.)` : '- (no pgbench run)';
  const refusals = Object.entries(s.refusals).map(([key, n]) => `${key}: ${fmt(n)}`);
  const wall = s.fullHouseAtCeilingMs === null ? '-' : `${fmt(s.fullHouseAtCeilingMs, 1)} ms`;
  return [
    row('bookings (201)', fmt(s.bookings), null, null, `${fmt(FULL_HOUSE)} (full house)`),
    ...(refusals.length ? refusals : ['-']).map((text, i) =>
      row(i === 0 ? 'refusals by status and code' : '', text),
    ),
    row('seats held twice (tables and 201s)', s.seatsTwice, null, null, '0'),
    row('bookings not adjacent in one row', s.bookingsApart, null, null, '0'),
    row('free seats stranded (both row neighbours unavailable)', s.strandedSeats, null, null, '0'),
    row('free seats / pairs left', `${s.freeSeatsLeft} / ${s.pairsLeft}`),
    row('latency p50 / p99 ms', `${fmt(s.p50Ms, 1)} / ${fmt(s.p99Ms, 1)}`),
    RULE,
    row(
      'holds/s in the wave vs pgbench one-statement hold (physical limit)',
      perSecond(s.holdsPerSecond),
      at(s.minimalCeiling),
      s.vsMinimal,
    ),
    row(
      '  vs pgbench own-SQL replay (seatlock_hold, 1 seat, no orphan check)',
      null,
      at(s.ownSqlCeiling),
      s.vsOwnSql,
    ),
    ...r.details.ceilings.runs.map((run) =>
      row(`    pgbench ${run.script}, ${run.clients} clients`, null, perSecond(run.tps)),
    ),
    row(
      `  wall time of the wave vs ${fmt(FULL_HOUSE)} holds at the ceiling rate`,
      `${fmt(s.wallMs, 1)} ms`,
      wall,
      ratio(s.fullHouseAtCeilingMs, s.wallMs),
    ),
    RULE,
    row(
      'PostgreSQL statements / round trips on the wire, wave',
      `${fmt(s.statements)} / ${fmt(s.roundTrips)}`,
    ),
    row('  statements per booking, wave', fmt(s.statementsPerBooking, 2)),
    row(
      '  statements incl. the outbox fan-out / per booking',
      `${fmt(s.statementsWithFanOut)} / ${fmt(s.statementsWithFanOutPerBooking, 2)}`,
    ),
    row(
      'Redis in the wave: EVALSHA + EVAL (NOSCRIPT) / all commands',
      `${fmt(s.redisScriptsSent)} (${fmt(s.redisNoscript)}) / ${fmt(s.redisCommands)}`,
    ),
    row(
      '  per request: scripts sent / all commands',
      `${perRequest(s.redisScriptsSent)} / ${perRequest(s.redisCommands)}`,
    ),
    RULE,
    row('API peak RSS (VmHWM) MB', fmt(s.peakRssMB, 1), null, null, '<= 250'),
  ];
}

export function printBestReport(o: Options, r: ReturnType<typeof summarize>): void {
  const s = r.summary;
  const title =
    `Best available: ${fmt(s.contenders)} x POST /bookings {quantity: ${QUANTITY}} at once, ` +
    `${fmt(SEATS)} seats (${ROWS} rows x ${SEATS_PER_ROW}), orphanPolicy strict, ` +
    (o.warm ? 'warm' : 'cold');
  const json = {
    ...{ benchmark: 'best-available', ok: r.ok, contenders: o.contenders, seats: SEATS },
    ...{ rows: ROWS, seatsPerRow: SEATS_PER_ROW, quantity: QUANTITY, orphanPolicy: 'strict' },
    ...{ warm: o.warm, summary: s, details: r.details, anomalies: r.anomalies },
  };
  const ceilingNote =
    'ceiling: pgbench holds one seat per transaction, no orphan check; ' +
    `the wave holds ${QUANTITY} under the rule`;
  printReport(
    [
      { title, rows: tableRows(s, r), lines: [ceilingNote], notes: r.anomalies },
      { lines: [r.ok ? 'OK' : 'FAILED'] },
    ],
    o.json ? json : undefined,
  );
}
