import { setTimeout as sleep } from 'node:timers/promises';
import type { Stack } from './cost-stack';
import { type CpuReading, type CpuTotals, cpuBetween, GROUPS, msPerSecond } from './process-cpu';

/*
 * An operation's cost: CPU from the start of its window to its end (the requests), then on until
 * the work it left behind is done (the after-work): no outbox message pending, no notification
 * delivery pending, every seat change published, every simulator webhook delivered, and the API
 * and PostgreSQL back near their idle rate for a second.
 */

/** Above the idle rate by at most this (ms of CPU per second): the API, and PostgreSQL (shared). */
const NEAR_IDLE = { API: 15, PostgreSQL: 40 };
const POLL_MS = 250;
/** The backlog clear this long without the CPU near idle: the after-work ends where it cleared. */
const BUSY_GRACE_MS = 5_000;

/** One statement; EXISTS on the partial indexes, cheap enough to ask every POLL_MS. */
const API_BACKLOG = `SELECT EXISTS (SELECT 1 FROM outbox_messages WHERE status = 'pending') AS outbox,
  EXISTS (SELECT 1 FROM notification_deliveries WHERE status = 'pending') AS deliveries,
  EXISTS (SELECT 1 FROM seat_changes) AS "seatChanges"`;
const GATEWAY_BACKLOG = `SELECT EXISTS (SELECT 1 FROM gateway_sim.webhook_deliveries
  WHERE delivered_at IS NULL AND failed_at IS NULL) AS webhooks`;

type Backlog = Record<'outbox' | 'deliveries' | 'seatChanges' | 'webhooks', boolean>;

export async function backlog(stack: Stack): Promise<Backlog> {
  const [api] = (await stack.db.query(API_BACKLOG)).rows;
  const [gateway] = (await stack.gatewayDb.query(GATEWAY_BACKLOG)).rows;
  return { ...api, ...gateway } as Backlog;
}

const clear = (b: Backlog): boolean => !Object.values(b).some(Boolean);

export interface Drain {
  /** The reading where the after-work ended. */
  end: CpuReading;
  seconds: number;
  /** False: the timeout came first (`left` says what was still pending). */
  drained: boolean;
  /** The backlog cleared but the CPU stayed above idle (other load on the server, say). */
  busyAfterClear: boolean;
  left: string[];
}

type Point = { reading: CpuReading; clear: boolean };

/** Whether the CPU from `from` to `to` is near `idle` for the API and PostgreSQL. */
function nearIdle(from: CpuReading, to: CpuReading, idle: CpuTotals | null): boolean {
  if (!idle) return true;
  const rate = msPerSecond(from, to);
  return (
    rate.API <= idle.API + NEAR_IDLE.API &&
    rate.PostgreSQL <= idle.PostgreSQL + NEAR_IDLE.PostgreSQL
  );
}

/**
 * From `start` until the after-work is done (see above) or `timeoutMs`: the end is the first
 * reading after which the backlog stayed clear and the CPU near idle for a second.
 */
export async function waitDrained(
  stack: Stack,
  start: CpuReading,
  idle: CpuTotals | null,
  timeoutMs: number,
): Promise<Drain> {
  const points: Point[] = [];
  let last = await backlog(stack);
  points.push({ reading: start, clear: clear(last) });
  for (;;) {
    await sleep(POLL_MS);
    last = await backlog(stack);
    const now: Point = { reading: stack.cpu.read(), clear: clear(last) };
    points.push(now);
    const elapsed = now.reading.at - start.at;
    // The clear run so far: the points since the last one with a backlog.
    let first = points.length;
    while (first > 0 && points[first - 1].clear) first -= 1;
    const run = points.slice(first);
    const quiet = run.find((p) => now.reading.at - p.reading.at >= 1_000 - POLL_MS / 2);
    const done = (end: CpuReading, busy: boolean): Drain => ({
      end,
      seconds: (end.at - start.at) / 1000,
      drained: true,
      busyAfterClear: busy,
      left: [],
    });
    if (quiet && nearIdle(quiet.reading, now.reading, idle)) {
      // The run's first reading if the CPU was idle from there, else the start of the quiet second.
      return done(
        nearIdle(run[0].reading, now.reading, idle) ? run[0].reading : quiet.reading,
        false,
      );
    }
    if (run.length && now.reading.at - run[0].reading.at >= BUSY_GRACE_MS)
      return done(run[0].reading, true);
    if (elapsed >= timeoutMs) {
      const left = Object.entries(last).flatMap(([name, pending]) => (pending ? [name] : []));
      return {
        end: now.reading,
        seconds: elapsed / 1000,
        drained: false,
        busyAfterClear: false,
        left,
      };
    }
  }
}

export interface OperationCost {
  name: string;
  ops: number;
  windowSeconds: number;
  /** CPU µs per operation, by group: during the window, and after it until drained. */
  requestUs: CpuTotals;
  afterUs: CpuTotals;
  drain: Omit<Drain, 'end'>;
  /** Cores of other processes on the machine over window + after-work (other helpers, say). */
  otherCores: number | null;
  /** Cores of other databases' backends on the server meanwhile, left out of PostgreSQL. */
  otherDatabaseCores: number;
  detail: Record<string, unknown>;
}

const perOp = (cpu: CpuTotals, ops: number): CpuTotals => {
  const out = {} as CpuTotals;
  for (const group of GROUPS) out[group] = ops > 0 ? (cpu[group] * 1e6) / ops : NaN;
  return out;
};

/**
 * Waits for the stack to be quiet (unless `quietFirst` is false: work scheduled ahead), then runs `work` (answering how many operations it did) between
 * two readings, then waits for its after-work.
 */
export async function measureOperation(
  stack: Stack,
  idle: CpuTotals | null,
  name: string,
  work: () => Promise<{ ops: number; detail?: Record<string, unknown> }>,
  timeoutMs = 60_000,
  quietFirst = true,
): Promise<OperationCost> {
  if (quietFirst) await waitDrained(stack, stack.cpu.read(), idle, 30_000);
  const start = stack.cpu.read();
  const { ops, detail = {} } = await work();
  const windowEnd = stack.cpu.read();
  const { end, ...drain } = await waitDrained(stack, windowEnd, idle, timeoutMs);
  const seconds = (end.at - start.at) / 1000;
  const other =
    start.other === null || end.other === null ? null : (end.other - start.other) / seconds;
  return {
    name,
    ops,
    windowSeconds: (windowEnd.at - start.at) / 1000,
    requestUs: perOp(cpuBetween(start, windowEnd), ops),
    afterUs: perOp(cpuBetween(windowEnd, end), ops),
    drain,
    otherCores: other,
    otherDatabaseCores: (end.otherDatabases - start.otherDatabases) / seconds,
    detail,
  };
}
