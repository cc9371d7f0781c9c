import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import { Client as PgClient } from 'pg';
import { BenchRun } from '../../support/bench/bench-run';
import type { Child } from '../../support/bench/child-processes';
import { BenchError } from '../../support/bench/cli';
import { freePort } from '../../support/redis-server';
import * as pg from '../../support/bench/bench-postgres';
import { CpuReader } from './process-cpu';

/* The measured stack: one API and the gateway simulator on fresh databases, Redis, PostgreSQL. */

export const run = new BenchRun('cost');
export const { log, children } = run;

const [API_DB, GATEWAY_DB] = ['seatlock_bench_cost', 'seatlock_bench_cost_gateway'];
/** Long enough that no hold of the run lapses (the expiry phase has an API of its own). */
const RUN_HOLD_TTL_SECONDS = 1800;

export interface Stack {
  api: Child;
  gateway: Child;
  apiDbUrl: string;
  redisUrl: string;
  secret: string;
  /** On the API database, not through the API: backlog reads and set-up. */
  db: PgClient;
  gatewayDb: PgClient;
  cpu: CpuReader;
}

/**
 * The API as deployed but for what a load test needs: the sweeper and reconciler at the app's
 * defaults (bench runs stretch them to an hour; idle must count them), rate limits and the
 * per-customer cap off (benchApiEnv), webhooks to loopback allowed.
 */
export function apiEnv(secret: string, holdTtlSeconds = RUN_HOLD_TTL_SECONDS) {
  return {
    GATEWAY_WEBHOOK_SECRET: secret,
    HOLD_TTL_SECONDS: String(holdTtlSeconds),
    HOLD_MAX_LIFETIME_SECONDS: String(Math.max(RUN_HOLD_TTL_SECONDS, holdTtlSeconds)),
    SWEEP_INTERVAL_MS: '1000',
    RECONCILE_INTERVAL_MS: '5000',
    // The outbox's webhook endpoint is a receiver in this process, on 127.0.0.1.
    WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'true',
  };
}

/** redis-server's own pid (INFO server), so that its CPU is read even when it is not our child. */
async function redisPid(url: string): Promise<number | null> {
  const client = new Redis(url, { maxRetriesPerRequest: 0, lazyConnect: true });
  client.on('error', () => undefined);
  try {
    await client.connect();
    const match = /process_id:(\d+)/.exec(await client.info('server'));
    return match ? Number(match[1]) : null;
  } finally {
    client.disconnect();
  }
}

async function connect(url: string): Promise<PgClient> {
  const client = new PgClient(url).on('error', () => undefined);
  run.track({ stop: () => client.end() });
  await client.connect();
  return client;
}

/** The postmaster: the parent of the backend serving `db`. */
async function postmasterPid(db: PgClient): Promise<number> {
  const { rows } = await db.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
  try {
    const stat = readFileSync(`/proc/${rows[0].pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    throw new BenchError('PostgreSQL runs elsewhere: bench:cost reads its CPU from /proc');
  }
}

export async function startStack(): Promise<Stack> {
  const apiDbUrl = await run.freshDatabase(API_DB);
  const gatewayDbUrl = await run.freshDatabase(GATEWAY_DB);
  const redis = await run.redis();
  // The API learns the simulator's port first; the simulator, the API's webhook URL then.
  const gatewayPort = await freePort();
  const secret = `whsec_bench_${randomBytes(16).toString('hex')}`;
  const api = await run.startApi({
    database: apiDbUrl,
    redis: redis.url,
    gateway: `http://127.0.0.1:${gatewayPort}`,
    env: apiEnv(secret),
  });
  const gateway = await run.startGateway({
    database: gatewayDbUrl,
    webhookUrl: `${api.url}/payments/webhook`,
    secret,
    port: gatewayPort,
  });
  const [db, gatewayDb] = [await connect(apiDbUrl), await connect(gatewayDbUrl)];
  const pids = {
    api: api.pid,
    gateway: gateway.pid,
    postmaster: await postmasterPid(db),
    redis: await redisPid(redis.url),
  };
  if (pids.redis === null) log('redis-server pid unknown: Redis CPU not measured');
  const ours = new Set([API_DB, GATEWAY_DB].map(pg.benchDatabaseName).concat('postgres'));
  const cpu = run.track(new CpuReader(pids, ours));
  return { api, gateway, apiDbUrl, redisUrl: redis.url, secret, db, gatewayDb, cpu };
}

/** The API stopped (the pgbench floors run without it). */
export async function stopApi(stack: Stack): Promise<void> {
  await children.stop(stack.api);
}

/** An API of its own on the same database (the expiry phase's short TTL), replacing the first. */
export async function replaceApi(stack: Stack, holdTtlSeconds: number): Promise<void> {
  await stopApi(stack);
  stack.api = await run.startApi({
    name: 'API (short TTL)',
    database: stack.apiDbUrl,
    redis: stack.redisUrl,
    gateway: stack.gateway.url,
    env: apiEnv(stack.secret, holdTtlSeconds),
  });
  stack.cpu.pids.api = stack.api.pid;
}
