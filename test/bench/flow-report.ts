import { cpus } from 'node:os';
import type { LedgerReport } from '../../apps/api/src/ledger/ledger-check';
import { fmt, present, printReport, row, RULE } from '../support/bench/report';
import { latencySummary, ratio, round } from '../support/bench/stats';
import type { Measurement } from './flow-measure';
import { OWN_SQL_FLOW_TRANSACTIONS } from './own-sql-flow';

/* The flow benchmark's checks, its JSON report and its table. */

export type CeilingRun = { tps: number; clients: number; cycles: number };
type Ceilings = {
  minimal: CeilingRun | null;
  minimalRuns: CeilingRun[];
  ownSql: CeilingRun | null;
};
type Checks = { ledger: LedgerReport; anomalies: string[] };
type Options = { customers: number; duration: number; warmup: number };
type P50P99 = { p50: number | null; p99: number | null };

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

/** What the reader should know beside the figures; none of it fails the run. */
function notes(m: Measurement, checks: Checks, appTransactions: number | null): string[] {
  const errors = Object.entries(m.measured.errorSamples).map(
    ([key, text]) => `${m.measured.errors[key]} x ${key}, the first: ${text}`,
  );
  const replayGap =
    appTransactions !== null && Math.abs(appTransactions - OWN_SQL_FLOW_TRANSACTIONS) >= 1;
  return present([
    ...checks.anomalies,
    ...errors,
    m.measured.outOfSeats && 'ran out of seats during the measured window',
    m.outbox.pending > 0 && `${m.outbox.pending} outbox messages still pending`,
    (!m.before.settled || !m.after.settled) && 'PostgreSQL counters did not settle',
    (m.cpu.otherCores ?? 0) > 0.25 && `other processes used ${m.cpu.otherCores} cores`,
    replayGap &&
      `the API ran ${appTransactions} transactions per booking, the own-SQL replay ` +
        `${OWN_SQL_FLOW_TRANSACTIONS}: it leaves the rest out`,
  ]);
}

export function flowReport(o: Options, m: Measurement, checks: Checks, ceiling: Ceilings | null) {
  const inside = m.measured.cycles.filter((cycle) => cycle.endedAt <= m.measured.deadline);
  const step = (key: 'hold' | 'pay' | 'cycle') => latencySummary(inside.map((c) => c[key]));
  const latencyMs = { hold: step('hold'), pay: step('pay'), cycle: step('cycle') };
  const bookingsPerSecond = round(inside.length / o.duration, 1);
  // Every booking the measured phase made did its work between the two snapshots.
  const bookings = m.measured.cycles.length;
  const per = (n: number) => (bookings > 0 ? round(n / bookings, 2) : null);
  // Less our outbox reads: a transaction each, plus their session's start-up.
  const transactions = m.after.xacts - m.before.xacts - m.outbox.reads - 1;
  const p50p99 = ({ p50, p99 }: P50P99) => ({ p50, p99 });
  const tps = (run?: CeilingRun | null) => (run ? { tps: run.tps, clients: run.clients } : null);
  const ledgerClean = checks.ledger.violations.length === 0;
  const { cycles, found } = invariants(m, checks);
  return {
    benchmark: 'flow',
    ok: found.length === 0 && ledgerClean,
    summary: {
      customers: o.customers,
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
    },
    durationSeconds: o.duration,
    warmupSeconds: o.warmup,
    latencyMs,
    errors: m.measured.errors,
    warmup: { cycles: m.warmup.cycles.length, errors: m.warmup.errors },
    postgres: { bookings, transactions, publishedAtApiExit: m.publishedAtApiExit, ...m.wire },
    gatewayPerBooking: Object.fromEntries(Object.entries(m.gateway).map(([k, n]) => [k, per(n)])),
    cpu: m.cpu,
    ceilings: ceiling,
    ledger: { ...checks.ledger, violations: checks.ledger.violations.slice(0, 20), cycles },
    invariantViolations: found,
    anomalies: notes(m, checks, per(transactions)),
  };
}

export function printFlowReport(r: ReturnType<typeof flowReport>, json: boolean): void {
  const s = r.summary;
  const ms = ({ p50, p99 }: P50P99) => `${fmt(p50, 1)} / ${fmt(p99, 1)}`;
  const at = (c: { tps: number; clients: number } | null) =>
    c && `${fmt(c.tps, 1)}/s @${c.clients}`;
  const cores = Object.entries(r.cpu.groups).sort((a, b) => (b[1].cores ?? 0) - (a[1].cores ?? 0));
  const machine = `${r.cpu.otherCores} / ${r.cpu.machineCores} of ${cpus().length}`;
  const rows = [
    row('bookings/s vs minimal SQL', s.bookingsPerSecond, at(s.minimalCeiling), s.vsMinimal),
    row('bookings/s vs own-SQL replay', s.bookingsPerSecond, at(s.ownSqlCeiling), s.vsOwnSql),
    row('hold p50 / p99 ms', ms(s.stepsMs.hold)),
    row('pay p50 / p99 ms', ms(s.stepsMs.pay)),
    row('errors by step and status', Object.entries(r.errors).join('; ') || 'none'),
    row('invariant violations', r.invariantViolations.length, null, null, '0'),
    RULE,
    row('PG transactions per booking', s.transactionsPerBooking, 'minimal: 4'),
    row('PG statements per booking (wire)', s.statementsPerBooking, 'minimal: 4'),
    row('PG round trips per booking (wire)', s.roundTripsPerBooking, 'minimal: 4'),
    row(
      'gateway intents / POSTs / webhooks per booking',
      Object.values(r.gatewayPerBooking).join(' / '),
    ),
    RULE,
    ...cores.map(([name, group]) => row(`CPU: ${name}`, `${fmt(group.cores, 2)} cores`)),
    row('CPU: other processes / whole machine', machine),
    RULE,
    row('check:ledger', s.ledgerClean ? 'clean' : 'VIOLATIONS', null, null, 'clean'),
  ];
  const notes = [
    ...r.ledger.violations.map((v) => `ledger: ${v}`),
    ...r.invariantViolations.slice(0, 20).map((v) => `invariant: ${v}`),
    ...r.anomalies,
  ];
  const title = `Payment flow: ${s.customers} customers, hold -> pay -> confirmed, ${r.durationSeconds} s`;
  printReport([{ title, rows, notes }, { lines: [r.ok ? 'OK' : 'FAILED'] }], json ? r : undefined);
}
