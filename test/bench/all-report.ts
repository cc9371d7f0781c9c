import type { CeilingRun, HttpState, WindowName, WindowResult, WireCost } from './holds-windows';
import { bestCeiling } from './holds-windows';
import type { ProfileSummary } from '../support/bench/cpu-profile';
import type { CpuReport } from '../support/bench/proc-stats';
import { ratio } from '../support/bench/stats';
import {
  fmt,
  perSecond,
  printReport,
  type ReportSection,
  type TableRow,
} from '../support/bench/report';

/* The suite's report: figures, ceilings, goals (issue 11's targets), anomalies; table and JSON. */

interface ChildRun {
  code: number | null;
  seconds: number | null;
  report: { ok?: boolean; summary?: any; error?: string } | null;
}

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

interface Goal {
  goal: string;
  measured: number | null;
  target: string;
  status: 'MET' | 'MISSED' | 'n/a';
}

function goal(
  name: string,
  measured: number | null | undefined,
  op: '>=' | '<=',
  target: number,
): Goal {
  const value = measured ?? null;
  const met = value === null ? null : op === '>=' ? value >= target : value <= target;
  return {
    goal: name,
    measured: value,
    target: `${op} ${target}`,
    status: met === null ? 'n/a' : met ? 'MET' : 'MISSED',
  };
}

function httpFigures(http: HttpPart) {
  const w = http.windows;
  const minimal = bestCeiling(http.ceilings, 'one-statement hold');
  const own = bestCeiling(http.ceilings, 'own-SQL replay');
  const live = w.live?.perSecond ?? null;
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
    conflicts: {
      perSecond: w.conflicts?.perSecond ?? null,
      live,
      vsLive: ratio(w.conflicts?.perSecond, live),
    },
    availability: {
      perSecond: w.seats?.perSecond ?? null,
      live,
      vsLive: ratio(w.seats?.perSecond, live),
    },
    ceilings: http.ceilings,
  };
}

function anomalies(result: SuiteResult): string[] {
  const notes: string[] = [];
  for (const [name, run] of Object.entries(result.parts)) {
    if (run.code !== 0 || !run.report?.ok)
      notes.push(`${name} failed (exit ${run.code}): ${run.report?.error ?? 'no report'}`);
  }
  for (const [name, window] of Object.entries(result.http?.windows ?? {})) {
    if (window.errors > 0)
      notes.push(
        `http ${name}: ${window.errors} unexpected answers ${JSON.stringify(window.statuses)}`,
      );
    if (window.exhausted) notes.push(`http ${name}: ran out of seats`);
    if ((window.cpu?.otherCores ?? 0) > 0.25)
      notes.push(`http ${name}: other processes used ${window.cpu?.otherCores} cores`);
  }
  const logged = result.http?.apiLog.levels;
  if (logged && logged.error + logged.fatal > 0)
    notes.push(`http: ${logged.error + logged.fatal} API error log lines`);
  if ((result.otherCoresBefore ?? 0) > 0.25)
    notes.push(`other processes used ${result.otherCoresBefore} cores before the suite`);
  return notes;
}

export function buildReport(result: SuiteResult) {
  const s = result.parts.stampede?.report?.summary;
  const flow = result.parts.flow?.report?.summary;
  const notify = result.parts.notify?.report?.summary;
  const lock = result.parts.lock?.report?.summary;
  const http = result.http ? httpFigures(result.http) : null;
  const peak = Object.values(result.rss).length ? Math.max(...Object.values(result.rss)) : null;
  const goals = [
    goal(
      'stampede: contenders answered without PostgreSQL',
      s?.lockOn?.answeredWithoutPostgres,
      '>=',
      0.999,
    ),
    goal(
      'PostgreSQL statements per isolated hold (wire, fan-out included)',
      http?.statementsPerHold.find((w) => w.concurrency === 1)?.statements,
      '<=',
      3,
    ),
    goal('distinct-seat holds/s vs pgbench one-statement hold', http?.holds.vsMinimal, '>=', 0.5),
    goal('409 path vs /health/live', http?.conflicts.vsLive, '>=', 0.6),
    goal('flow: PostgreSQL transactions per booking', flow?.transactionsPerBooking, '<=', 4),
    goal('flow: bookings/s vs pgbench minimal flow SQL', flow?.vsMinimal, '>=', 0.5),
    goal('outbox -> webhooks vs HTTP-only ceiling', notify?.vsHttp, '>=', 0.3),
    goal('lock pairs/s vs raw SET NX + delete', lock?.oursVsRaw, '>=', 0.9),
    goal('API peak RSS (MB)', peak, '<=', 250),
  ];
  const notes = anomalies(result);
  const failed = notes.some((note) => /failed|unexpected answers/.test(note));
  const missedWindows: WindowName[] = [];
  if (goals[2].status === 'MISSED') missedWindows.push('holds');
  if (goals[3].status === 'MISSED') missedWindows.push('conflicts');
  const json = {
    benchmark: 'all',
    ok: !failed,
    figures: {
      stampede: s ?? null,
      ...(http ?? {}),
      flow: flow ?? null,
      notify: notify ?? null,
      lock: lock ?? null,
      peakRssMB: result.rss,
    },
    goals,
    anomalies: notes,
    profiles: result.profiles,
    cpu: result.cpu ?? null,
    otherCoresBefore: result.otherCoresBefore,
    parts: Object.fromEntries(
      Object.entries(result.parts).map(([name, run]) => [
        name,
        { code: run.code, seconds: run.seconds, report: run.report },
      ]),
    ),
  };
  return { json, missedWindows, goals, rows: rows(json.figures, http, goals) };
}

/** The child benchmarks' summaries, as their JSON gave them. */
type Figures = Record<string, any>;
type Mark = (i: number) => string;

function stampedeRows(f: any, g: Mark): TableRow[] {
  const on = f.lockOn;
  const off = f.lockOff;
  return [
    {
      figure: `stampede: ${fmt(f.contenders)} holds on one seat`,
      measured: 'lock on',
      ceiling: 'LOCK_MODE=off',
    },
    {
      figure: '  winners / 409s',
      measured: `${on?.winners} / ${on?.conflicts}`,
      ceiling: `${off?.winners} / ${off?.conflicts}`,
    },
    {
      figure: '  PostgreSQL statements on the wire',
      measured: fmt(on?.statements),
      ceiling: fmt(off?.statements),
    },
    {
      figure: '  latency p50 / p99 ms',
      measured: `${fmt(on?.p50Ms, 1)} / ${fmt(on?.p99Ms, 1)}`,
      ceiling: `${fmt(off?.p50Ms, 1)} / ${fmt(off?.p99Ms, 1)}`,
    },
    {
      figure: '  answered without PostgreSQL',
      measured: `${fmt((on?.answeredWithoutPostgres ?? 0) * 100, 1)} %`,
      goal: g(0),
    },
    { figure: '-' },
  ];
}

function httpRows(http: ReturnType<typeof httpFigures>, g: Mark): TableRow[] {
  const h = http.holds;
  return [
    {
      figure: 'holds/s (64 conn.) vs pgbench one-statement hold (physical limit)',
      measured: perSecond(h.perSecond),
      ceiling: `${perSecond(h.minimalCeiling?.tps)} (${h.minimalCeiling?.clients} cl.)`,
      ratio: h.vsMinimal,
      goal: g(2),
    },
    {
      figure: '  vs pgbench own-SQL replay (our seatlock_hold call)',
      ceiling: `${perSecond(h.ownSqlCeiling?.tps)} (${h.ownSqlCeiling?.clients} cl.)`,
      ratio: h.vsOwnSql,
    },
    ...http.ceilings.map((run) => ({
      figure: `    pgbench ${run.script}, ${run.clients} clients`,
      ceiling: perSecond(run.tps),
    })),
    {
      figure: '  hold latency p50 / p99 ms',
      measured: `${fmt(h.latencyMs?.p50, 1)} / ${fmt(h.latencyMs?.p99, 1)}`,
    },
    ...http.statementsPerHold.map((w) => ({
      figure: `  PostgreSQL statements / round trips per hold (wire, fan-out incl.), ${w.concurrency === 1 ? 'isolated' : `${w.concurrency} at a time`}`,
      measured: `${fmt(w.statements, 1)} / ${fmt(w.roundTrips, 1)}`,
      goal: w.concurrency === 1 ? g(1) : undefined,
    })),
    {
      figure: '409 path req/s vs /health/live',
      measured: perSecond(http.conflicts.perSecond),
      ceiling: perSecond(http.conflicts.live),
      ratio: http.conflicts.vsLive,
      goal: g(3),
    },
    {
      figure: 'availability GET /events/{id}/seats (1,000 seats) vs /health/live',
      measured: perSecond(http.availability.perSecond),
      ceiling: perSecond(http.availability.live),
      ratio: http.availability.vsLive,
    },
    { figure: '-' },
  ];
}

function flowRows(flow: any, g: Mark): TableRow[] {
  return [
    {
      figure: 'hold -> pay -> confirm bookings/s vs pgbench minimal flow SQL',
      measured: perSecond(flow.bookingsPerSecond),
      ceiling: perSecond(flow.minimalCeiling?.tps),
      ratio: flow.vsMinimal,
      goal: g(5),
    },
    {
      figure: '  vs pgbench own-SQL replay',
      ceiling: perSecond(flow.ownSqlCeiling?.tps),
      ratio: flow.vsOwnSql,
    },
    {
      figure: '  PostgreSQL transactions / statements per booking',
      measured: `${fmt(flow.transactionsPerBooking, 1)} / ${fmt(flow.statementsPerBooking, 1)}`,
      goal: g(4),
    },
  ];
}

function notifyAndLockRows(f: Figures, g: Mark): TableRow[] {
  const out: TableRow[] = [];
  if (f.notify) {
    out.push(
      {
        figure: 'outbox -> webhook messages/s vs HTTP-only ceiling',
        measured: perSecond(f.notify.messagesPerSecond),
        ceiling: perSecond(f.notify.httpCeiling),
        ratio: f.notify.vsHttp,
        goal: g(6),
      },
      {
        figure: '  vs pgbench minimal per-message SQL',
        ceiling: perSecond(f.notify.minimalSqlCeiling),
        ratio: f.notify.vsMinimalSql,
      },
    );
  }
  if (f.lock) {
    out.push({
      figure: `lock acquire+release pairs/s @${f.lock.inflight} vs raw SET NX + delete`,
      measured: perSecond(f.lock.pairsPerSecond?.ours),
      ceiling: perSecond(f.lock.pairsPerSecond?.raw),
      ratio: f.lock.oursVsRaw,
      goal: g(7),
    });
  }
  return out;
}

function rows(f: Figures, http: ReturnType<typeof httpFigures> | null, goals: Goal[]): TableRow[] {
  const g: Mark = (i) => `${goals[i].target} ${goals[i].status}`;
  return [
    ...(f.stampede ? stampedeRows(f.stampede, g) : []),
    ...(http ? httpRows(http, g) : []),
    ...(f.flow ? flowRows(f.flow, g) : []),
    ...notifyAndLockRows(f, g),
    { figure: '-' },
    { figure: 'API peak RSS (VmHWM) MB', measured: fmt(goals[8].measured, 1), goal: g(8) },
  ];
}

/** The table, the goals, the anomalies, the profiles; the JSON when asked. */
export function printSuiteReport(
  report: ReturnType<typeof buildReport>,
  result: SuiteResult,
  json: boolean,
): void {
  const lines = report.goals.map(
    (g) => `${g.status.padEnd(7)} ${g.goal}: ${g.measured ?? '-'} (goal ${g.target})`,
  );
  const section: ReportSection = { rows: report.rows, lines, notes: report.json.anomalies };
  const profiles: string[] = [];
  for (const [name, profile] of Object.entries(result.profiles)) {
    if ('error' in profile) {
      profiles.push(`profile ${name}: ${profile.error}`);
      continue;
    }
    profiles.push(
      `profile ${name} (${profile.file}): busy ${profile.busyMs} ms, idle ${profile.idlePct} %`,
    );
    for (const item of [...profile.topAreas, ...profile.topFunctions.slice(0, 8)])
      profiles.push(`  ${String(item.pctOfBusy).padStart(5)} %  ${item.name}`);
  }
  printReport([section, { lines: profiles }], json ? report.json : undefined);
}
