import { setTimeout as sleep } from 'node:timers/promises';
import * as pg from '../../support/bench/bench-postgres';
import { BenchRun } from '../../support/bench/bench-run';
import { groupSampler } from './cpu-groups';

/* What the stream bench's phases share: its log and children, its clock, the event's shape. */

/** The event's rows by default (--rows): 20 × 50 = 1,000 seats. */
export const ROWS = 20;
export const SEATS_PER_ROW = 50;
/** STREAM_POLL_MS as the API runs it (its default): the publisher's drain interval. */
export const STREAM_POLL_MS = 50;
export const SETTLE_TIMEOUT_MS = 20_000;
/** Its name before BENCH_DATABASE_PREFIX (see benchDatabaseName). */
export const DATABASE = 'seatlock_bench_stream';
export const run = new BenchRun('stream', 10_000);
export const { log, children } = run;

/** The one clock of the bench: both ends of every latency are stamped with it. */
export const clock = (): number => performance.now();

export async function until(at: number): Promise<void> {
  const wait = at - clock();
  if (wait > 0) await sleep(wait);
}

export const GROUPS = {
  api: 'API (node)',
  bench: 'bench: subscribers + load (this node)',
  redis: 'redis-server (private)',
} as const;

/** CPU of the named processes, this one, and the bench database's PostgreSQL. */
export function streamSampler(pids: Record<number, string>) {
  return groupSampler({ database: pg.benchDatabaseName(DATABASE), self: GROUPS.bench, pids });
}
