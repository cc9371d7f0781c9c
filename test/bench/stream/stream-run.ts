import { setTimeout as sleep } from 'node:timers/promises';
import * as pg from '../../support/bench/bench-postgres';
import * as proc from '../../support/bench/child-processes';
import * as cli from '../../support/bench/cli';
import { groupSampler } from './cpu-groups';

/* What the stream bench's phases share: its log and children, its clock, the event's shape. */

export const ROWS = 20;
export const SEATS_PER_ROW = 50;
export const SEATS = ROWS * SEATS_PER_ROW;
/** STREAM_POLL_MS as the API runs it (its default): the publisher's drain interval. */
export const STREAM_POLL_MS = 50;
export const SETTLE_TIMEOUT_MS = 20_000;
export const DATABASE = pg.benchDatabaseName('seatlock_bench_stream');
export const log = cli.logger('stream');
export const children = new proc.ChildProcesses(log, 10_000);

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
  return groupSampler({ database: DATABASE, self: GROUPS.bench, pids });
}
