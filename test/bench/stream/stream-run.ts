import { monitorEventLoopDelay } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import * as pg from '../../support/bench/bench-postgres';
import { BenchRun, HOUR_MS } from '../../support/bench/bench-run';
import { round } from '../../support/bench/stats';
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

/** The one clock of the bench (the subscribers' too): both ends of every latency use it. */
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

/** `work` with streamSampler's CPU and this process's event-loop delay (ms) watched. */
export async function watched<T>(pids: Record<number, string>, work: () => Promise<T>) {
  const [sampler, delay] = [streamSampler(pids), monitorEventLoopDelay({ resolution: 10 })];
  delay.enable();
  await sampler.start();
  const result = await work();
  const cpu = await sampler.stop();
  delay.disable();
  const [p50, p99] = [50, 99].map((p) => round(delay.percentile(p) / 1e6));
  return { result, cpu, eventLoopDelayMs: { p50, p99, max: round(delay.max / 1e6) } };
}

/** The API on a fresh database and a private Redis, its streams uncapped; how to start another. */
export async function stack() {
  const databaseUrl = await run.freshDatabase(DATABASE);
  const redis = await run.privateRedis();
  const env = {
    HOLD_TTL_SECONDS: '900',
    STREAM_POLL_MS: String(STREAM_POLL_MS),
    // Every subscriber connects from 127.0.0.1: the per-address cap (50) would refuse most.
    STREAM_MAX_PER_IP: '0',
    NOTIFY_POLL_MS: HOUR_MS,
  };
  const startApi = () => run.startApi({ database: databaseUrl, redis: redis.url, env });
  const api = await startApi();
  return { api, startApi, databaseUrl, redisUrl: redis.url, redisPid: redis.pid };
}
export type Stack = Awaited<ReturnType<typeof stack>>;
