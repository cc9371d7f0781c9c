import { setTimeout as sleep } from 'node:timers/promises';
import type { Client } from 'pg';
import * as pg from '../support/bench/bench-postgres';
import { CpuSampler } from '../support/bench/proc-stats';

/*
 * What the flow benchmark counts besides its own replies: PostgreSQL's transactions, the
 * simulator's work, the rows a booking leaves, the CPU by process.
 */

/** The databases as freshDatabase names them; with BENCH_DATABASE_PREFIX applied, as PostgreSQL does. */
export const API_DB = 'seatlock_bench_flow';
export const GATEWAY_DB = 'seatlock_bench_gateway';
const API_DATABASE = pg.benchDatabaseName(API_DB);
const GATEWAY_DATABASE = pg.benchDatabaseName(GATEWAY_DB);
/** An idle backend publishes its counters within PGSTAT_IDLE_INTERVAL (10 s): that, plus a margin. */
const STATS_QUIET_MS = 12_000;

/**
 * The API database's transactions once every backend has published them: STATS_QUIET_MS after
 * its last activity (`quietSince`; 0 once the API exited, which publishes at once) and unchanged
 * for 2 s; `settled` false if that took over 25 s.
 */
export async function settle(quietSince: number): Promise<{ xacts: number; settled: boolean }> {
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

export type GatewayCounts = Record<'intents' | 'posts' | 'webhooks' | 'backlog', number>;

/** What the simulator did so far, from its own tables. */
export async function gatewayCounts(gatewayDb: Client): Promise<GatewayCounts> {
  const count = (from: string) => `(SELECT count(*) FROM gateway_sim.${from})::int`;
  const { rows } = await gatewayDb.query(
    `SELECT ${count('payment_intents')} AS intents, ${count('idempotency_keys')} AS posts,
            ${count('webhook_deliveries')} AS webhooks,
            ${count('webhook_deliveries WHERE delivered_at IS NULL AND failed_at IS NULL')} AS backlog`,
  );
  return rows[0] as GatewayCounts;
}

/**
 * Until the simulator delivered every webhook and the outbox the bookings wrote is dispatched (or
 * stalled for 6 s): that work belongs to them. The outbox reads are transactions of the API
 * database too: answers how many, to subtract.
 */
export async function drain(gatewayDb: Client, apiDbUrl: string) {
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

type Rows = Record<'confirmed' | 'booked' | 'captured', number>;

/** Confirmed bookings, booked seats and captured payments of one event. */
export async function bookedRows(url: string, eventId: string): Promise<Rows> {
  const result = await pg.withClient(url, (client) =>
    client.query(
      `SELECT (SELECT count(*) FROM bookings WHERE event_id = $1 AND status = 'confirmed')::int
                AS confirmed,
              (SELECT count(*) FROM seats WHERE event_id = $1 AND status = 'booked')::int AS booked,
              (SELECT count(*) FROM payments p JOIN bookings b ON b.id = p.booking_id
                WHERE b.event_id = $1 AND p.status = 'captured')::int AS captured`,
      [eventId],
    ),
  );
  return result.rows[0] as Rows;
}

/** CPU by process: the API, the simulator, this process, Redis, PostgreSQL by database. */
export function cpuSampler(admin: Client, api: number, gateway: number): CpuSampler {
  let backends = new Map<number, string>();
  const prepare = async (): Promise<void> => {
    const { rows: activity } = await admin.query(`SELECT pid, datname FROM pg_stat_activity`);
    backends = new Map(activity.map((row) => [Number(row.pid), String(row.datname ?? '')]));
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
