import { randomUUID } from 'node:crypto';
import * as pg from '../../support/bench/bench-postgres';
import { commandStats } from '../../support/bench/bench-state';
import { BenchError } from '../../support/bench/cli';
import { type LoadResult, loadWindow } from '../../support/bench/load';
import { fmt } from '../../support/bench/report';
import { round } from '../../support/bench/stats';
import {
  HOLD_TTL_SECONDS,
  LIVE_CONNECTIONS,
  type Options,
  PRICE_CENTS,
  run,
  SECTION,
} from './flash-options';

/*
 * The ceilings, measured in the same run: the API's own GET /health/live; with the API stopped,
 * pgbench of the minimal unit claim on the same database and raw DECRBY on the same redis-server.
 */

/** Free units per pgbench client-second: far above what 2 cores claim, so no run runs dry. */
const PGBENCH_UNITS_PER_SECOND = 12_000;
const REDIS_BENCHMARK_CLIENTS = 50;
const REDIS_BENCHMARK_REQUESTS = 300_000;

/** The server's own /health/live on 64 connections: the framework's floor, the API idle. */
export async function liveCeiling(api: string, seconds: number): Promise<LoadResult | null> {
  run.log(`ceiling: GET /health/live, ${LIVE_CONNECTIONS} connections, 1 s warm-up + ${seconds} s`);
  return loadWindow({
    url: api,
    connections: LIVE_CONNECTIONS,
    seconds,
    warmupSeconds: 1,
    expected: 200,
    next: () => ({ method: 'GET', path: '/health/live' }),
  });
}

/**
 * The least SQL that sells free units: ONE statement per transaction that marks the first `q`
 * free units of the section held, skipping rows other transactions are claiming (the partial
 * index seats_free_units_idx, as the app walks it). No booking row, no count, no cap, no function.
 */
const UNIT_CLAIM_SQL = String.raw`\set bn (:client_id + 1) * 1000000000 + :runbase + random(1, 999999999)
UPDATE seats SET status = 'held', booking_id = lpad(to_hex(:bn::bigint), 32, '0')::uuid,
       held_until = now() + interval '${HOLD_TTL_SECONDS} seconds'
 WHERE event_id = :ev AND label IN (
   SELECT label FROM seats
    WHERE event_id = :ev AND section = '${SECTION}' AND row_name IS NULL AND status = 'free'
    ORDER BY position LIMIT :q FOR UPDATE SKIP LOCKED)
RETURNING label;
`;

export interface ClaimRun {
  script: string;
  clients: number;
  tps: number | null;
  unitsPerSecond: number | null;
  processed: number | null;
  unitsClaimed: number;
  unitsLeft: number;
}

/** A GA event of `units` free units written straight into the database; answers its id. */
async function prepareUnits(url: string, units: number): Promise<string> {
  const eventId = randomUUID();
  await pg.withClient(url, async (client) => {
    const sections = [{ name: SECTION, kind: 'ga', capacity: units, priceCents: PRICE_CENTS }];
    await client.query(
      `INSERT INTO events (id, name, venue, starts_at, currency, sections, seat_count)
       VALUES ($1, 'pgbench unit claim', 'Bench Arena', '2027-06-01T19:30:00Z', 'EUR', $2, $3)`,
      [eventId, JSON.stringify(sections), units],
    );
    await client.query(
      `INSERT INTO seats (event_id, label, section, position, price_cents, row_name, seat_number)
       SELECT $1, 'GA1-' || g, $3, g, $4, NULL, g FROM generate_series(1, $2::int) g`,
      [eventId, units, SECTION, PRICE_CENTS],
    );
    await client.query('VACUUM ANALYZE seats');
  });
  return eventId;
}

async function claimRun(
  url: string,
  seconds: number,
  clients: number,
  quantity: '1' | 'random(1, 4)',
  index: number,
): Promise<ClaimRun> {
  const script = quantity === '1' ? 'unit claim, 1 unit' : 'unit claim, 1-4 units';
  const units = Math.ceil(PGBENCH_UNITS_PER_SECOND * seconds * (quantity === '1' ? 1 : 2.5));
  run.log(`ceiling: pgbench ${script}, ${clients} clients x ${seconds} s (${fmt(units)} units)`);
  const ev = await prepareUnits(url, units);
  const result = await pg.runPgbench(run.children, {
    url,
    script: `\\set q ${quantity}\n${UNIT_CLAIM_SQL}`,
    clients,
    seconds,
    vars: { ev, runbase: index * 1_000_000_000_000 },
  });
  const counts = await pg.withClient(url, async (client) => {
    const { rows } = await client.query<{ held: number; free: number }>(
      `SELECT count(*) FILTER (WHERE status = 'held')::int AS held,
              count(*) FILTER (WHERE status = 'free')::int AS free
         FROM seats WHERE event_id = $1`,
      [ev],
    );
    return rows[0];
  });
  // Every transaction must have claimed at least one unit: a dry pool would inflate the rate.
  if (counts.free === 0 || (result.processed !== null && counts.held < result.processed)) {
    throw new BenchError(
      `pgbench ${script}: ${counts.held} units held for ${result.processed} transactions, ` +
        `${counts.free} left: the pool ran dry`,
    );
  }
  const perTransaction = result.processed ? counts.held / result.processed : null;
  return {
    script,
    clients,
    tps: round(result.tps),
    unitsPerSecond:
      result.tps === null || perTransaction === null ? null : round(result.tps * perTransaction),
    processed: result.processed,
    unitsClaimed: counts.held,
    unitsLeft: counts.free,
  };
}

/** pgbench of the unit claim, the API stopped: 1 unit at 10 and 32 clients, 1–4 units at 10. */
export async function claimCeilings(options: Options, url: string) {
  const none = (skipped: string) => ({ runs: [] as ClaimRun[], skipped });
  if (!options.pgbench) return none('--no-pgbench');
  if (!pg.findPgbench()) return none('no pgbench on this machine');
  try {
    const runs: ClaimRun[] = [];
    const plan: [number, '1' | 'random(1, 4)'][] = [
      [10, '1'],
      [32, '1'],
      [10, 'random(1, 4)'],
    ];
    for (const [wanted, quantity] of plan) {
      const clients = Math.max(1, Math.min(wanted, (await pg.availableConnections()) - 5));
      runs.push(await claimRun(url, options.pgbenchSeconds, clients, quantity, runs.length + 1));
    }
    return { runs, skipped: null };
  } catch (error) {
    return none(`pgbench failed: ${(error as Error).message.split('\n')[0]}`);
  }
}

export interface RedisCeiling {
  tool: string;
  clients: number;
  perSecond: number | null;
  p50Ms: number | null;
  skipped: string | null;
}

/**
 * Raw DECRBY on the same redis-server: redis-benchmark (C, pipelining 1; redis-tools, which the
 * redis-server package depends on, ships it). Skipped, not failed, when it does not run.
 */
export async function redisCeiling(url: string): Promise<RedisCeiling> {
  const port = new URL(url).port;
  run.log(`ceiling: DECRBY on the private Redis, ${REDIS_BENCHMARK_CLIENTS} clients`);
  const none = (skipped: string) => ({
    tool: 'none',
    clients: 0,
    perSecond: null,
    p50Ms: null,
    skipped,
  });
  try {
    await commandStats(url); // it answers
    const { code, output } = await run.children.runToEnd(
      'redis-benchmark',
      [
        'redis-benchmark',
        ...['-h', '127.0.0.1', '-p', port, '-c', String(REDIS_BENCHMARK_CLIENTS)],
        ...['-n', String(REDIS_BENCHMARK_REQUESTS), '--csv', 'DECRBY', 'ga:{ceiling}:1', '1'],
      ],
      process.env,
      120_000,
    );
    const line = output.split('\n').find((l) => l.startsWith('"DECRBY'));
    const cells = line?.split(',').map((cell) => Number(cell.replace(/"/g, '')));
    if (code !== 0 || !cells || !Number.isFinite(cells[1])) {
      return none(`redis-benchmark failed (exit ${code}): ${output.slice(-300)}`);
    }
    return {
      tool: 'redis-benchmark',
      clients: REDIS_BENCHMARK_CLIENTS,
      perSecond: round(cells[1]),
      p50Ms: Number.isFinite(cells[4]) ? cells[4] : null,
      skipped: null,
    };
  } catch (error) {
    return none(`redis-benchmark did not run: ${(error as Error).message}`);
  }
}
