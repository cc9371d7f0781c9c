import { randomUUID } from 'node:crypto';
import * as pg from '../../support/bench/bench-postgres';
import { commandStats } from '../../support/bench/bench-state';
import { BenchError } from '../../support/bench/cli';
import { loadWindow } from '../../support/bench/load';
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

/* The ceilings of the same run: /health/live; then, the API stopped, pgbench and redis-benchmark. */

/** Free units per pgbench client-second: far above what 2 cores claim, so no run runs dry. */
const PGBENCH_UNITS_PER_SECOND = 12_000;
const REDIS_CLIENTS = 50;

/** The server's own /health/live: the framework's floor, the API idle. */
export function liveCeiling(api: string, seconds: number) {
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
 * The least SQL that sells free units: one UPDATE per transaction of the first `q` free units,
 * skipping rows others are claiming (the index seats_free_units_idx, as the app walks it).
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

async function claimRun(url: string, seconds: number, clients: number, q: string, index: number) {
  const script = q === '1' ? 'unit claim, 1 unit' : 'unit claim, 1-4 units';
  const units = Math.ceil(PGBENCH_UNITS_PER_SECOND * seconds * (q === '1' ? 1 : 2.5));
  run.log(`ceiling: pgbench ${script}, ${clients} clients x ${seconds} s (${fmt(units)} units)`);
  const ev = await prepareUnits(url, units);
  const result = await pg.runPgbench(run.children, {
    url,
    script: `\\set q ${q}\n${UNIT_CLAIM_SQL}`,
    clients,
    seconds,
    vars: { ev, runbase: index * 1_000_000_000_000 },
  });
  const { held, free } = await pg.withClient(url, async (client) => {
    const { rows } = await client.query<{ held: number; free: number }>(
      `SELECT count(*) FILTER (WHERE status = 'held')::int AS held,
              count(*) FILTER (WHERE status = 'free')::int AS free
         FROM seats WHERE event_id = $1`,
      [ev],
    );
    return rows[0];
  });
  // Every transaction must have claimed a unit: a dry pool would inflate the rate.
  if (free === 0 || (result.processed !== null && held < result.processed)) {
    throw new BenchError(
      `pgbench ${script}: ${held} units held for ${result.processed} transactions, ${free} left`,
    );
  }
  const perTransaction = result.processed ? held / result.processed : null;
  return {
    script,
    clients,
    tps: round(result.tps),
    unitsPerSecond:
      result.tps === null || perTransaction === null ? null : round(result.tps * perTransaction),
    processed: result.processed,
    unitsClaimed: held,
    unitsLeft: free,
  };
}
export type ClaimRun = Awaited<ReturnType<typeof claimRun>>;

/** pgbench of the unit claim: 1 unit at 10 and 32 clients, 1–4 units at 10. */
export async function claimCeilings(options: Options, url: string) {
  const none = (skipped: string) => ({ runs: [] as ClaimRun[], skipped });
  if (!options.pgbench) return none('--no-pgbench');
  if (!pg.findPgbench()) return none('no pgbench on this machine');
  try {
    const runs: ClaimRun[] = [];
    for (const [wanted, q] of [
      [10, '1'],
      [32, '1'],
      [10, 'random(1, 4)'],
    ] as const) {
      const clients = Math.max(1, Math.min(wanted, (await pg.availableConnections()) - 5));
      runs.push(await claimRun(url, options.pgbenchSeconds, clients, q, runs.length + 1));
    }
    return { runs, skipped: null };
  } catch (error) {
    return none(`pgbench failed: ${(error as Error).message.split('\n')[0]}`);
  }
}

/** Raw DECRBY on the same redis-server by redis-benchmark (C, no pipelining); skipped if absent. */
export async function redisCeiling(url: string) {
  run.log(`ceiling: DECRBY on the private Redis, ${REDIS_CLIENTS} clients`);
  const none = (skipped: string) => ({
    tool: 'none',
    clients: 0,
    perSecond: null as number | null,
    p50Ms: null as number | null,
    skipped: skipped as string | null,
  });
  try {
    await commandStats(url); // it answers
    const args = ['-h', '127.0.0.1', '-p', new URL(url).port, '-c', String(REDIS_CLIENTS)];
    const { code, output } = await run.children.runToEnd(
      'redis-benchmark',
      ['redis-benchmark', ...args, '-n', '300000', '--csv', 'DECRBY', 'ga:{ceiling}:1', '1'],
      process.env,
      120_000,
    );
    const line = output.split('\n').find((l) => l.startsWith('"DECRBY'));
    const cells = line?.split(',').map((cell) => Number(cell.replace(/"/g, '')));
    if (code !== 0 || !cells || !Number.isFinite(cells[1])) {
      return none(`redis-benchmark failed (exit ${code}): ${output.slice(-300)}`);
    }
    const p50Ms = Number.isFinite(cells[4]) ? cells[4] : null;
    const perSecond = round(cells[1]);
    return { tool: 'redis-benchmark', clients: REDIS_CLIENTS, perSecond, p50Ms, skipped: null };
  } catch (error) {
    return none(`redis-benchmark did not run: ${(error as Error).message}`);
  }
}
