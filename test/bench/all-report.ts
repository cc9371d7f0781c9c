import type { ProfileSummary } from '../support/bench/cpu-profile';
import type { CpuReport } from '../support/bench/proc-stats';
import { fmt, percent, perSecond, present, printReport, row, RULE } from '../support/bench/report';
import { ratio } from '../support/bench/stats';
import type { CeilingRun, HttpState, WindowName, WindowResult, WireCost } from './holds-windows';
import { bestCeiling } from './holds-windows';

/* The suite's report: figures, ceilings, goals (issue 11's targets), anomalies; table and JSON. */

type ChildRun = {
  code: number | null;
  seconds: number | null;
  report: { ok?: boolean; summary?: any; error?: string } | null;
};

export interface HttpPart {
  windows: Partial<Record<WindowName, WindowResult>>;
  wire: WireCost[];
  ceilings: CeilingRun[];
  apiLog: { levels: Record<string, number>; messages: Record<string, number> };
  state: HttpState;
}

export interface SuiteResult {
  options: { quick: boolean; connections: number };
  parts: Partial<Record<'stampede' | 'flow' | 'notify' | 'lock', ChildRun>>;
  http?: HttpPart;
  profiles: Partial<Record<WindowName, ProfileSummary | { error: string }>>;
  rss: Record<string, number>;
  otherCoresBefore: number | null;
  cpu?: CpuReport;
}

type Goal = { goal: string; measured: number | null; target: string; status: string };
type Mark = (goal: keyof ReturnType<typeof goals>) => string;

/** `target`: '>= 0.5' or '<= 3'. */
function goal(name: string, measured: number | null | undefined, target: string): Goal {
  const [op, bound] = [target.slice(0, 2), Number(target.slice(3))];
  const value = measured ?? null;
  const met = value === null ? null : op === '>=' ? value >= bound : value <= bound;
  return {
    goal: name,
    measured: value,
    target,
    status: met === null ? 'n/a' : met ? 'MET' : 'MISSED',
  };
}

function httpFigures(http: HttpPart) {
  const w = http.windows;
  const [minimal, own] = [
    bestCeiling(http.ceilings, 'one-statement hold'),
    bestCeiling(http.ceilings, 'own-SQL replay'),
  ];
  const live = w.live?.perSecond ?? null;
  const vsLive = (window?: WindowResult) => ({
    perSecond: window?.perSecond ?? null,
    live,
    vsLive: ratio(window?.perSecond, live),
  });
  return {
    holds: {
      perSecond: w.holds?.perSecond ?? null,
      latencyMs: w.holds?.latencyMs ?? null,
      minimalCeiling: minimal && { tps: minimal.tps, clients: minimal.clients },
      ownSqlCeiling: own && { tps: own.tps, clients: own.clients },
      vsMinimal: ratio(w.holds?.perSecond, minimal?.tps),
      vsOwnSql: ratio(w.holds?.perSecond, own?.tps),
    },
    statementsPerHold: http.wire,
    conflicts: vsLive(w.conflicts),
    availability: vsLive(w.seats),
    ceilings: http.ceilings,
  };
}
type HttpFigures = ReturnType<typeof httpFigures>;

function anomalies(result: SuiteResult): string[] {
  const parts = Object.entries(result.parts).map(
    ([name, run]) =>
      (run.code !== 0 || !run.report?.ok) &&
      `${name} failed (exit ${run.code}): ${run.report?.error ?? 'no report'}`,
  );
  const windows = Object.entries(result.http?.windows ?? {}).flatMap(([name, w]) => [
    w.errors > 0 && `http ${name}: ${w.errors} unexpected answers ${JSON.stringify(w.statuses)}`,
    w.exhausted && `http ${name}: ran out of seats`,
    (w.cpu?.otherCores ?? 0) > 0.25 &&
      `http ${name}: other processes used ${w.cpu?.otherCores} cores`,
  ]);
  const logged = result.http?.apiLog.levels;
  return present([
    ...parts,
    ...windows,
    !!logged &&
      logged.error + logged.fatal > 0 &&
      `http: ${logged.error + logged.fatal} API error log lines`,
    (result.otherCoresBefore ?? 0) > 0.25 &&
      `other processes used ${result.otherCoresBefore} cores before the suite`,
  ]);
}

/** Issue 11's targets. */
function goals(summaries: Record<string, any>, http: HttpFigures | null, rss: number[]) {
  const { stampede, flow, notify, lock } = summaries;
  const isolated = http?.statementsPerHold.find((w) => w.concurrency === 1)?.statements;
  return {
    stampede: goal(
      'stampede: contenders answered without PostgreSQL',
      stampede?.lockOn?.answeredWithoutPostgres,
      '>= 0.999',
    ),
    statements: goal(
      'PostgreSQL statements per isolated hold (wire, fan-out included)',
      isolated,
      '<= 3',
    ),
    holds: goal(
      'distinct-seat holds/s vs pgbench one-statement hold',
      http?.holds.vsMinimal,
      '>= 0.5',
    ),
    conflicts: goal('409 path vs /health/live', http?.conflicts.vsLive, '>= 0.6'),
    flowTransactions: goal(
      'flow: PostgreSQL transactions per booking',
      flow?.transactionsPerBooking,
      '<= 4',
    ),
    flow: goal('flow: bookings/s vs pgbench minimal flow SQL', flow?.vsMinimal, '>= 0.5'),
    notify: goal('outbox -> webhooks vs HTTP-only ceiling', notify?.vsHttp, '>= 0.3'),
    lock: goal('lock pairs/s vs raw SET NX + delete', lock?.oursVsRaw, '>= 0.9'),
    rss: goal('API peak RSS (MB)', rss.length ? Math.max(...rss) : null, '<= 250'),
  };
}

export function buildReport(result: SuiteResult) {
  const summary = (part: keyof SuiteResult['parts']) => result.parts[part]?.report?.summary ?? null;
  const summaries = {
    stampede: summary('stampede'),
    flow: summary('flow'),
    notify: summary('notify'),
    lock: summary('lock'),
  };
  const { stampede, flow, notify, lock } = summaries;
  const http = result.http ? httpFigures(result.http) : null;
  const goalsByKey = goals(summaries, http, Object.values(result.rss));
  const notes = anomalies(result);
  const json = {
    benchmark: 'all',
    ok: !notes.some((note) => /failed|unexpected answers/.test(note)),
    figures: { stampede, ...(http ?? {}), flow, notify, lock, peakRssMB: result.rss },
    goals: Object.values(goalsByKey),
    anomalies: notes,
    profiles: result.profiles,
    cpu: result.cpu ?? null,
    otherCoresBefore: result.otherCoresBefore,
    parts: result.parts,
  };
  const g: Mark = (key) => `${goalsByKey[key].target} ${goalsByKey[key].status}`;
  const rows = [
    ...(stampede ? stampedeRows(stampede, g) : []),
    ...(http ? httpRows(http, g) : []),
    ...(flow ? flowRows(flow, g) : []),
    ...(notify ? notifyRows(notify, g) : []),
    ...(lock ? [lockRow(lock, g)] : []),
    RULE,
    row('API peak RSS (VmHWM) MB', fmt(goalsByKey.rss.measured, 1), null, null, g('rss')),
  ];
  const missed = (['holds', 'conflicts'] as const).filter((w) => goalsByKey[w].status === 'MISSED');
  return { json, missedWindows: missed, rows };
}

function stampedeRows(f: any, g: Mark) {
  const [on, off] = [f.lockOn, f.lockOff];
  const both = (show: (s: any) => string) => [show(on), show(off)] as const;
  return [
    row(`stampede: ${fmt(f.contenders)} holds on one seat`, 'lock on', 'LOCK_MODE=off'),
    row('  winners / 409s', ...both((s) => `${s?.winners} / ${s?.conflicts}`)),
    row('  PostgreSQL statements on the wire', ...both((s) => fmt(s?.statements))),
    row('  latency p50 / p99 ms', ...both((s) => `${fmt(s?.p50Ms, 1)} / ${fmt(s?.p99Ms, 1)}`)),
    row(
      '  answered without PostgreSQL',
      percent(on?.answeredWithoutPostgres ?? 0),
      null,
      null,
      g('stampede'),
    ),
    RULE,
  ];
}

function httpRows(http: HttpFigures, g: Mark) {
  const h = http.holds;
  const at = (c: { tps: number | null; clients: number } | null) =>
    `${perSecond(c?.tps)} (${c?.clients} cl.)`;
  const { conflicts: c, availability: a } = http;
  return [
    row(
      'holds/s (64 conn.) vs pgbench one-statement hold (physical limit)',
      perSecond(h.perSecond),
      at(h.minimalCeiling),
      h.vsMinimal,
      g('holds'),
    ),
    row(
      '  vs pgbench own-SQL replay (our seatlock_hold call)',
      null,
      at(h.ownSqlCeiling),
      h.vsOwnSql,
    ),
    ...http.ceilings.map((run) =>
      row(`    pgbench ${run.script}, ${run.clients} clients`, null, perSecond(run.tps)),
    ),
    row('  hold latency p50 / p99 ms', `${fmt(h.latencyMs?.p50, 1)} / ${fmt(h.latencyMs?.p99, 1)}`),
    ...http.statementsPerHold.map((w) =>
      row(
        `  PostgreSQL statements / round trips per hold (wire, fan-out incl.), ${w.concurrency === 1 ? 'isolated' : `${w.concurrency} at a time`}`,
        `${fmt(w.statements, 1)} / ${fmt(w.roundTrips, 1)}`,
        null,
        null,
        w.concurrency === 1 ? g('statements') : undefined,
      ),
    ),
    row(
      '409 path req/s vs /health/live',
      perSecond(c.perSecond),
      perSecond(c.live),
      c.vsLive,
      g('conflicts'),
    ),
    row(
      'availability GET /events/{id}/seats (1,000 seats) vs /health/live',
      perSecond(a.perSecond),
      perSecond(a.live),
      a.vsLive,
    ),
    RULE,
  ];
}

function flowRows(flow: any, g: Mark) {
  return [
    row(
      'hold -> pay -> confirm bookings/s vs pgbench minimal flow SQL',
      perSecond(flow.bookingsPerSecond),
      perSecond(flow.minimalCeiling?.tps),
      flow.vsMinimal,
      g('flow'),
    ),
    row('  vs pgbench own-SQL replay', null, perSecond(flow.ownSqlCeiling?.tps), flow.vsOwnSql),
    row(
      '  PostgreSQL transactions / statements per booking',
      `${fmt(flow.transactionsPerBooking, 1)} / ${fmt(flow.statementsPerBooking, 1)}`,
      null,
      null,
      g('flowTransactions'),
    ),
  ];
}

function notifyRows(notify: any, g: Mark) {
  return [
    row(
      'outbox -> webhook messages/s vs HTTP-only ceiling',
      perSecond(notify.messagesPerSecond),
      perSecond(notify.httpCeiling),
      notify.vsHttp,
      g('notify'),
    ),
    row(
      '  vs pgbench minimal per-message SQL',
      null,
      perSecond(notify.minimalSqlCeiling),
      notify.vsMinimalSql,
    ),
  ];
}

function lockRow(lock: any, g: Mark) {
  return row(
    `lock acquire+release pairs/s @${lock.inflight} vs raw SET NX + delete`,
    perSecond(lock.pairsPerSecond?.ours),
    perSecond(lock.pairsPerSecond?.raw),
    lock.oursVsRaw,
    g('lock'),
  );
}

/** The table, the goals, the anomalies, the profiles; the JSON when asked. */
export function printSuiteReport(
  report: ReturnType<typeof buildReport>,
  result: SuiteResult,
  json: boolean,
): void {
  const lines = report.json.goals.map(
    (g) => `${g.status.padEnd(7)} ${g.goal}: ${g.measured ?? '-'} (goal ${g.target})`,
  );
  const profiles = Object.entries(result.profiles).flatMap(([name, profile]) =>
    'error' in profile
      ? [`profile ${name}: ${profile.error}`]
      : [
          `profile ${name} (${profile.file}): busy ${profile.busyMs} ms, idle ${profile.idlePct} %`,
          ...[...profile.topAreas, ...profile.topFunctions.slice(0, 8)].map(
            (item) => `  ${String(item.pctOfBusy).padStart(5)} %  ${item.name}`,
          ),
        ],
  );
  const section = { rows: report.rows, lines, notes: report.json.anomalies };
  printReport([section, { lines: profiles }], json ? report.json : undefined);
}
