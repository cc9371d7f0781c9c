import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client as PgClient } from 'pg';
import * as pg from '../support/bench/bench-postgres';
import type { BenchRun } from '../support/bench/bench-run';
import { CpuSampler } from '../support/bench/proc-stats';
import { freePort } from '../support/redis-server';
import { runPhase, type Seat, type Vu } from './flow-load';

/*
 * The flow benchmark's stack (the simulator, the API behind a counting proxy) and its measured
 * window, with what it counts besides the replies: PostgreSQL's transactions, the simulator's
 * work, the CPU by process.
 */

const [API_DB, GATEWAY_DB] = ['seatlock_bench_flow', 'seatlock_bench_gateway'];
/** As PostgreSQL names them (BENCH_DATABASE_PREFIX applied). */
const [API_DATABASE, GATEWAY_DATABASE] = [API_DB, GATEWAY_DB].map(pg.benchDatabaseName);
/** An idle backend publishes its counters within PGSTAT_IDLE_INTERVAL (10 s): that, plus a margin. */
const STATS_QUIET_MS = 12_000;

export type Stack = Awaited<ReturnType<typeof startStack>>;
export type Measurement = Awaited<ReturnType<typeof measure>>;
type GatewayCounts = Record<'intents' | 'posts' | 'webhooks' | 'backlog', number>;

/**
 * The API database's transactions once every backend has published them: STATS_QUIET_MS after
 * `quietSince` (0 once the API exited, which publishes at once) and unchanged for 2 s;
 * `settled` false if that took over 25 s.
 */
async function settle(quietSince: number): Promise<{ xacts: number; settled: boolean }> {
  const started = Date.now();
  let [xacts, changedAt] = [await pg.transactionCount(API_DATABASE), started];
  for (;;) {
    await sleep(250);
    const next = await pg.transactionCount(API_DATABASE);
    if (next !== xacts) [xacts, changedAt] = [next, Date.now()];
    const now = Date.now();
    const settled = now - changedAt >= 2_000 && now - quietSince >= STATS_QUIET_MS;
    if (settled || now - started >= 25_000) return { xacts, settled };
  }
}

async function gatewayCounts(gatewayDb: PgClient): Promise<GatewayCounts> {
  const count = (from: string) => `(SELECT count(*) FROM gateway_sim.${from})::int`;
  const { rows } = await gatewayDb.query(
    `SELECT ${count('payment_intents')} AS intents, ${count('idempotency_keys')} AS posts,
            ${count('webhook_deliveries')} AS webhooks,
            ${count('webhook_deliveries WHERE delivered_at IS NULL AND failed_at IS NULL')} AS backlog`,
  );
  return rows[0] as GatewayCounts;
}

/**
 * Until the simulator delivered every webhook and the outbox is dispatched (or stalled for 6 s):
 * that work belongs to the bookings. Answers our outbox reads too: API transactions to subtract.
 */
async function drain(gatewayDb: PgClient, apiDbUrl: string) {
  const deadline = Date.now() + 60_000;
  while ((await gatewayCounts(gatewayDb)).backlog > 0 && Date.now() < deadline) await sleep(200);
  return pg.withClient(apiDbUrl, async (client) => {
    let [last, changedAt] = [-1, Date.now()];
    for (let reads = 1; ; reads += 1) {
      const { rows } = await client.query(
        `SELECT count(*)::int AS n FROM outbox_messages WHERE status = 'pending'`,
      );
      const pending = Number(rows[0].n);
      if (pending !== last) [last, changedAt] = [pending, Date.now()];
      if (pending === 0 || Date.now() - changedAt >= 6_000 || Date.now() > deadline) {
        return { pending, reads };
      }
      await sleep(500);
    }
  });
}

/** CPU by process: the API, the simulator, this process, Redis, PostgreSQL by database. */
function cpuSampler(admin: PgClient, api: number, gateway: number): CpuSampler {
  let backends = new Map<number, string>();
  const prepare = async (): Promise<void> => {
    const { rows } = await admin.query(`SELECT pid, datname FROM pg_stat_activity`);
    backends = new Map(rows.map((row) => [Number(row.pid), String(row.datname ?? '')]));
  };
  return new CpuSampler((p) => {
    if (p.pid === api) return 'API (node)';
    if (p.pid === gateway) return 'gateway simulator (node)';
    if (p.pid === process.pid) return 'load generator + wire proxy (this node)';
    if (p.comm === 'redis-server') return 'redis-server';
    if (p.comm !== 'postgres') return null;
    const database = backends.get(p.pid);
    if (database === API_DATABASE) return 'PostgreSQL: API database';
    if (database === GATEWAY_DATABASE) return 'PostgreSQL: simulator database';
    // The postmaster, checkpointer, WAL writer... and our reads of pg_stat_* (`postgres`).
    return !database || database === 'postgres' ? 'PostgreSQL: server' : null;
  }, prepare);
}

/** The databases, the proxy, the API, the simulator, and two PostgreSQL sessions to read. */
export async function startStack(bench: BenchRun, redisUrl: string) {
  const apiDbUrl = await bench.freshDatabase(API_DB);
  const gatewayDbUrl = await bench.freshDatabase(GATEWAY_DB);
  const proxy = await bench.countingProxy(apiDbUrl);
  // The API learns the simulator's port first; the simulator, the API's webhook URL then.
  const gatewayPort = await freePort();
  const secret = `whsec_bench_${randomBytes(16).toString('hex')}`;
  const api = await bench.startApi({
    database: proxy.urlFor(apiDbUrl),
    redis: redisUrl,
    gateway: `http://127.0.0.1:${gatewayPort}`,
    // The safety-net poll every 5 s, not every second, so that the counters can settle; NOTIFY
    // still wakes the dispatcher for every message a booking writes, and that counts.
    env: { GATEWAY_WEBHOOK_SECRET: secret, NOTIFY_POLL_MS: '5000' },
  });
  const webhookUrl = `${api.url}/payments/webhook`;
  const gateway = await bench.startGateway({
    database: gatewayDbUrl,
    webhookUrl,
    secret,
    port: gatewayPort,
  });
  const [admin, gatewayDb] = [pg.databaseUrl('postgres'), gatewayDbUrl].map((url) => {
    const client = new PgClient(url).on('error', () => undefined);
    bench.track({ stop: () => client.end() });
    return client;
  });
  await Promise.all([admin.connect(), gatewayDb.connect()]);
  return { admin, gatewayDb, proxy, api, gateway, apiDbUrl };
}

/** The warm-up, then the measured window with the counters before and after. */
export async function measure(
  s: Stack,
  o: { customers: number; warmup: number; duration: number },
  { vus, seats }: { vus: Vu[]; seats: Seat[] },
  { children, log }: BenchRun,
) {
  log(`warm-up: ${o.customers} customers for ${o.warmup} s`);
  const warmup = await runPhase(o.warmup, vus, seats, s.api);
  const warmupDone = Date.now();
  log('waiting for the webhooks, the outbox and the PostgreSQL counters');
  await drain(s.gatewayDb, s.apiDbUrl);
  const before = await settle(warmupDone);
  const [wire0, gateway0] = [s.proxy.counts(), await gatewayCounts(s.gatewayDb)];
  log(`measuring: ${o.customers} customers for ${o.duration} s`);
  const sampler = cpuSampler(s.admin, s.api.pid, s.gateway.pid);
  await sampler.start();
  const cpuDone = sleep(o.duration * 1000).then(() => sampler.stop());
  const measured = await runPhase(o.duration, vus, seats, s.api);
  const cpu = await cpuDone;
  const outbox = await drain(s.gatewayDb, s.apiDbUrl);
  const [wire, gateway] = [s.proxy.counts(), await gatewayCounts(s.gatewayDb)];
  const after = await settle(Date.now());
  await Promise.all(vus.map((vu) => vu.client.close()));
  log('stopping the API: a LISTEN session publishes its counters only when it exits');
  await children.stop(s.api);
  const publishedAtApiExit = (await settle(0)).xacts - after.xacts;
  const delta = <K extends string>(a: Record<K, number>, b: Record<K, number>, keys: K[]) =>
    Object.fromEntries(keys.map((key) => [key, a[key] - b[key]])) as Record<K, number>;
  return {
    ...{ warmup, measured, cpu, outbox, before, after, publishedAtApiExit },
    wire: delta(wire, wire0, ['statements', 'roundTrips']),
    gateway: delta(gateway, gateway0, ['intents', 'posts', 'webhooks']),
  };
}
