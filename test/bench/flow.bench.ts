/*
 * Payment flow: complete bookings per second, hold → pay → confirmed, one loop per customer.
 *
 *   npm run bench:flow -- [--customers 64] [--duration 20] [--warmup 3] [--json] [--no-pgbench]
 *
 * The built gateway simulator and API run as children on fresh databases of their own, the API
 * behind a PgCountingProxy. Each customer loops POST /bookings → POST /bookings/{id}/payments on
 * its own connection; a 201 that says anything but held, then captured + confirmed, is an invariant
 * violation. Reported: bookings/s, p50/p99 per step, errors by step and status, PostgreSQL
 * transactions (pg_stat_database), statements and round trips (on the wire) and gateway calls per
 * booking, the CPU split; check:ledger must be clean and match the cycles, else exit 1. Ceilings
 * (pgbench, the API stopped): the minimal durable SQL of a booking, and a replay of the API's own
 * SQL. Uses DATABASE_URL's server and REDIS_URL, both on this machine. More: docs/benchmarks.md.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { checkLedger } from '../../apps/api/src/ledger/ledger-check';
import * as pg from '../support/bench/bench-postgres';
import { BenchRun } from '../support/bench/bench-run';
import * as proc from '../support/bench/child-processes';
import * as cli from '../support/bench/cli';
import { flowCeilings } from './flow-ceilings';
import { setUpLoad } from './flow-load';
import { measure, startStack } from './flow-measure';
import { type Checks, flowReport, printFlowReport } from './flow-report';

const LEDGER_CHECK = resolve(proc.ROOT, 'dist/apps/api/apps/api/src/ledger/ledger-check.js');
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
  const checks: Checks = { ledger, anomalies: [] };
  const ceiling = options.pgbench
    ? await flowCeilings(bench.children, stack.apiDbUrl, options, checks.anomalies, bench.log)
    : null;
  return flowReport(options, m, checks, ceiling);
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
