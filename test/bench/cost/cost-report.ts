import { fmt, printReport } from '../../support/bench/report';
import type { OperationCost } from './after-work';
import type { Floors } from './floors';
import { type CpuTotals, type Group, GROUPS } from './process-cpu';

/* The table: per operation and process, request and after-work µs per operation, the floor, goals. */

export const OPERATION_TITLES: Record<string, string> = {
  hold: 'hold (distinct seat)',
  conflict: '409 (held seat)',
  best: 'best available (2)',
  ga: 'GA unit claim',
  paid: 'paid booking',
  release: 'release',
  outbox: 'outbox message delivered',
  expiry: 'expiry (swept hold)',
};

/** Issue 23's goals: a ratio to a floor, by operation and process. */
const GOALS: { op: string; group: Group; max: number; floor: 'own' | 'hold' }[] = [
  { op: 'hold', group: 'PostgreSQL', max: 3, floor: 'own' },
  { op: 'hold', group: 'API', max: 2.5, floor: 'own' },
  { op: 'conflict', group: 'API', max: 1.5, floor: 'own' },
  { op: 'paid', group: 'PostgreSQL', max: 6, floor: 'hold' },
];
export const IDLE_GOAL_MS_PER_S = 5;

/** The floor of `group` for operation `op` (µs), and what it is. */
function floorOf(op: string, group: Group, f: Floors): { us: number | null; what: string } {
  if (group === 'API') return { us: f.health.API, what: 'GET /health/live' };
  if (group === 'gateway') return { us: f.intent.gateway, what: 'simulator intent' };
  if (group === 'Redis') return { us: f.redis?.us ?? null, what: 'SET NX + DEL' };
  if (op === 'paid') return { us: f.flowSql.us, what: 'pgbench minimal flow' };
  if (op === 'outbox') return { us: f.outboxSql.us, what: 'pgbench outbox claim' };
  return { us: f.holdSql.us, what: 'pgbench one-statement hold' };
}

export interface CostLine {
  operation: string;
  process: Group;
  requestUs: number;
  afterUs: number;
  totalUs: number;
  floorUs: number | null;
  floor: string;
  ratio: number | null;
  goal: string | null;
  met: boolean | null;
}

export function costLines(ops: readonly OperationCost[], f: Floors): CostLine[] {
  return ops.flatMap((o) =>
    GROUPS.map((group) => {
      const [requestUs, afterUs] = [o.requestUs[group], o.afterUs[group]];
      const totalUs = requestUs + afterUs;
      const floor = floorOf(o.name, group, f);
      const ratio = floor.us ? totalUs / floor.us : null;
      const goal = GOALS.find((g) => g.op === o.name && g.group === group);
      const against = goal?.floor === 'hold' ? f.holdSql.us : floor.us;
      const goalRatio = goal && against ? totalUs / against : null;
      const met = goal && goalRatio !== null ? goalRatio <= goal.max : null;
      const goalText = goal
        ? `<= ${goal.max}x ${goal.floor === 'hold' ? 'hold floor' : 'floor'}: ${goalRatio?.toFixed(1)}x ${met ? 'met' : 'MISSED'}`
        : null;
      return {
        ...{ operation: o.name, process: group, requestUs, afterUs, totalUs },
        ...{ floorUs: floor.us, floor: floor.what, ratio, goal: goalText, met },
      };
    }),
  );
}

/** Fixed-width columns: the first `left` and the last left-aligned, the numbers between right. */
function columns(header: string[], rows: string[][], left: number): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const last = header.length - 1;
  const cell = (c: string, i: number) =>
    i < left || i === last ? c.padEnd(widths[i]) : c.padStart(widths[i]);
  const line = (cells: string[]) => cells.map(cell).join('  ').trimEnd();
  const rule = '-'.repeat(widths.reduce((sum, w) => sum + w + 2, -2));
  return [rule, line(header), rule, ...rows.map(line), rule];
}

const HEADER = [
  'operation',
  'process',
  'request us/op',
  'after-work us/op',
  'total us/op',
  'floor us/op',
  'ratio',
  'goal',
];

function costTable(lines: readonly CostLine[]): string[] {
  return columns(
    HEADER,
    lines.map((l) => [
      OPERATION_TITLES[l.operation] ?? l.operation,
      l.process,
      fmt(l.requestUs),
      fmt(l.afterUs),
      fmt(l.totalUs),
      fmt(l.floorUs, l.floorUs !== null && l.floorUs < 10 ? 1 : 0),
      l.ratio === null || !Number.isFinite(l.ratio) ? '-' : `${l.ratio.toFixed(1)}x`,
      l.goal ?? '',
    ]),
    2,
  );
}

function drainNote(o: OperationCost): string {
  if (!o.drain.drained) return `not drained: ${o.drain.left.join(', ')}`;
  return o.drain.busyAfterClear ? 'backlog clear, CPU not back to idle' : '';
}

function summaryLines(ops: readonly OperationCost[]): string[] {
  const rows = ops.map((o) => [
    OPERATION_TITLES[o.name] ?? o.name,
    fmt(o.ops),
    fmt(o.ops / o.windowSeconds),
    fmt(o.windowSeconds, 1),
    fmt(o.drain.seconds, 1),
    o.otherCores === null ? '-' : fmt(o.otherCores, 2),
    fmt(o.otherDatabaseCores, 2),
    drainNote(o),
  ]);
  return columns(
    ['operation', 'ops', 'ops/s', 'window s', 'drain s', 'other cores', 'other DBs', 'note'],
    rows,
    1,
  );
}

function floorLines(f: Floors): string[] {
  const pg = (what: string, x: { us: number; transactions: number }, unit: string) =>
    `  PostgreSQL ${what}: ${fmt(x.us)} us per ${unit} (${fmt(x.transactions)} pgbench transactions)`;
  return [
    pg('one-statement hold (HOLD_SCRIPT)', f.holdSql, 'hold'),
    pg('minimal paid flow (MINIMAL_FLOW_SCRIPT)', f.flowSql, 'booking'),
    pg('outbox claim + mark sent (OUTBOX_SCRIPT)', f.outboxSql, 'message'),
    `  API GET /health/live: ${fmt(f.health.API)} us per request`,
    `  gateway simulator POST /v1/payment_intents: ${fmt(f.intent.gateway)} us per intent`,
    f.redis
      ? `  Redis SET NX PX + DEL: ${fmt(f.redis.us, 1)} us per pair (${fmt(f.redis.transactions)} pairs)`
      : '  Redis: no floor (redis-server pid unknown)',
  ];
}

function idleLines(idle: CpuTotals): string[] {
  const total = GROUPS.reduce((sum, g) => sum + idle[g], 0);
  const parts = GROUPS.map((g) => `${g} ${fmt(idle[g], 1)}`).join(', ');
  const met = total <= IDLE_GOAL_MS_PER_S ? 'met' : 'MISSED';
  return [`  ${parts}; total ${fmt(total, 1)} ms/s (goal <= ${IDLE_GOAL_MS_PER_S}: ${met})`];
}

export function printCostReport(
  o: { ops: readonly OperationCost[]; floors: Floors; idle: CpuTotals; notes: string[] },
  json: unknown,
): void {
  const lines = costLines(o.ops, o.floors);
  printReport(
    [
      {
        title:
          'CPU per operation by process (us), request window + after-work, floors from the same run',
        lines: costTable(lines),
      },
      { title: 'Operations', lines: summaryLines(o.ops) },
      { title: 'Floors', lines: floorLines(o.floors) },
      { title: 'Idle, CPU ms per second', lines: idleLines(o.idle), notes: o.notes },
    ],
    json,
  );
}
