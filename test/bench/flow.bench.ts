/*
 * Payment flow: complete bookings per second, each customer looping hold → pay → confirmed on its
 * own connection, against the built API (behind a PgCountingProxy) and gateway simulator on fresh
 * databases. A 201 that says anything but held, then captured + confirmed, is a violation;
 * check:ledger must be clean and match the cycles, else exit 1. Ceilings (pgbench, the API
 * stopped): the minimal durable SQL of a booking, and a replay of the API's own SQL. Uses
 * DATABASE_URL's server and REDIS_URL, both on this machine. More: docs/benchmarks.md.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { checkLedger } from '../../apps/api/src/ledger/ledger-check';
import * as pg from '../support/bench/bench-postgres';
import { BenchRun } from '../support/bench/bench-run';
import * as proc from '../support/bench/child-processes';
import * as cli from '../support/bench/cli';
import { MINIMAL_FLOW_SCRIPT } from '../support/bench/minimal-sql';
import { round } from '../support/bench/stats';
import { setUpLoad } from './flow-load';
import { measure, startStack } from './flow-measure';
import { type CeilingRun, flowReport, printFlowReport } from './flow-report';
import { FLOW_PRICE_CENTS, OWN_SQL_FLOW_SCRIPT, ownSqlFlowVariables } from './own-sql-flow';
import { type CycleRun, pgbenchClients, pgbenchCycles } from './pgbench-cycles';

const LEDGER_CHECK = resolve(proc.ROOT, 'dist/apps/api/apps/api/src/ledger/ledger-check.js');
/** Seats per second of a pgbench run: far above 2 cores. */
const PGBENCH_SEATS_PER_SECOND = 6_000;
const bench = new BenchRun('flow');

const USAGE = `Usage: npm run bench:flow -- [--customers N] [--duration S] [--warmup S] [--json] [--no-pgbench]

  --customers N   virtual customers, one connection each, looping hold -> pay (default 64)
  --duration S    measured window in seconds (default 20)
  --warmup S      warm-up before it, not counted (default 3)
  --json          also print one JSON object as the last line of stdout
  --no-pgbench    skip the pgbench ceilings`;

type Options = ReturnType<typeof readOptions>;

function readOptions() {
  const [text, flag] = [{ type: 'string' }, { type: 'boolean' }] as const;
  const options = { customers: text, duration: text, warmup: text, json: flag, 'no-pgbench': flag };
  const values = cli.parseBenchArgs(options, USAGE);
  const customers = cli.numberOption('customers', values.customers, 64, 1, 1000);
  if (!Number.isInteger(customers)) throw new cli.BenchError('--customers needs an integer');
  return {
    customers,
    duration: cli.numberOption('duration', values.duration, 20, 1, 600),
    warmup: cli.numberOption('warmup', values.warmup, 3, 0, 120),
    json: values.json === true,
    pgbench: values['no-pgbench'] !== true,
  };
}

/** One pgbench run: every cycle it counted must be a confirmed booking, a booked seat, a capture. */
async function ceilingRun(run: Omit<CycleRun, 'seatsPerSecond' | 'priceCents'>) {
  const { result, eventId } = await pgbenchCycles(bench.children, {
    ...run,
    seatsPerSecond: PGBENCH_SEATS_PER_SECOND,
    priceCents: FLOW_PRICE_CENTS,
  });
  const cycles = result.processed ?? 0;
  const written = await pg.withClient(run.url, async (client) => {
    const { rows } = await client.query(
      `SELECT (SELECT count(*) FROM bookings WHERE event_id = $1 AND status = 'confirmed')::int
                AS confirmed,
              (SELECT count(*) FROM seats WHERE event_id = $1 AND status = 'booked')::int AS booked,
              (SELECT count(*) FROM payments p JOIN bookings b ON b.id = p.booking_id
                WHERE b.event_id = $1 AND p.status = 'captured')::int AS captured`,
      [eventId],
    );
    return rows[0] as Record<string, number>;
  });
  if (Object.values(written).some((n) => n !== cycles)) {
    throw new cli.BenchError(`${cycles} cycles but ${JSON.stringify(written)} in the database`);
  }
  return { tps: round(result.tps, 1) ?? 0, clients: run.clients, cycles };
}

/** The minimal SQL at the load's clients and at 10, the own-SQL replay; a failed run noted. */
async function flowCeilings(url: string, o: Options, anomalies: string[]) {
  const clients = await pgbenchClients(o.customers);
  if (clients < o.customers) anomalies.push(`pgbench ran ${clients} clients only`);
  const seconds = Math.max(1, Math.round(o.duration));
  const attempt = (label: string, run: Omit<CycleRun, 'seatsPerSecond' | 'priceCents'>) => {
    bench.log(`pgbench: ${label}, ${seconds} s`);
    return ceilingRun(run).catch((error: Error) => {
      anomalies.push(`pgbench ${label}: ${error.message}`);
      return null;
    });
  };
  const minimalRuns: CeilingRun[] = [];
  for (const [i, n] of [...new Set([clients, 10])].entries()) {
    const run = {
      url,
      script: MINIMAL_FLOW_SCRIPT,
      clients: n,
      seconds,
      run: i + 1,
      physical: true,
    };
    const done = await attempt(`minimal SQL, ${n} clients`, run);
    if (done) minimalRuns.push(done);
  }
  const ownSql = await attempt(`own-SQL replay, ${clients} clients`, {
    ...{ url, script: OWN_SQL_FLOW_SCRIPT, clients, seconds, run: 9 },
    vars: ownSqlFlowVariables(),
  });
  const minimal = [...minimalRuns].sort((a, b) => b.tps - a.tps)[0] ?? null;
  return { minimal, minimalRuns, ownSql };
}

async function run(options: Options, check: typeof checkLedger, redisUrl: string) {
  const stack = await startStack(bench, redisUrl);
  const load = await setUpLoad(stack.api.url, bench.adminToken, options, bench.log);
  const m = await measure(stack, options, load, bench);
  bench.log('check:ledger over everything (the compiled checker from dist/)');
  const ledger = await cli.withTimeout(
    check({ databaseUrl: stack.apiDbUrl, gatewayUrl: stack.gateway.url, settleMs: 5_000 }),
    180_000,
    'check:ledger',
  );
  await bench.children.stop(stack.gateway);
  const anomalies: string[] = [];
  const ceiling = options.pgbench ? await flowCeilings(stack.apiDbUrl, options, anomalies) : null;
  return flowReport(options, m, { ledger, anomalies }, ceiling);
}

async function main(): Promise<number> {
  const options = readOptions();
  for (const file of [proc.GATEWAY_MAIN, LEDGER_CHECK]) {
    if (!existsSync(file)) throw new cli.BenchError(`${file} is missing: run npm run build`);
  }
  // Loaded now: a rebuild that empties dist/ during the run must not take the checker away.
  const ledger = (await import(pathToFileURL(LEDGER_CHECK).href)) as {
    checkLedger: typeof checkLedger;
  };
  const redisUrl = pg.localRedisUrl();
  await pg.requireRedis(redisUrl);
  const result = await run(options, ledger.checkLedger, redisUrl);
  await bench.stopAll();
  printFlowReport(result, options.json);
  return result.ok ? 0 : 1;
}

bench.main(main, 20 * 60_000);
