import type { ChildProcesses } from '../support/bench/child-processes';
import { BenchError } from '../support/bench/cli';
import { MINIMAL_FLOW_SCRIPT } from '../support/bench/minimal-sql';
import { round } from '../support/bench/stats';
import { bookedRows } from './flow-counters';
import { FLOW_PRICE_CENTS, OWN_SQL_FLOW_SCRIPT, ownSqlFlowVariables } from './own-sql-flow';
import { type CycleRun, pgbenchClients, pgbenchCycles } from './pgbench-cycles';

/*
 * The flow benchmark's ceilings, the API and the simulator stopped: pgbench of the minimal
 * durable SQL of a booking (the physical limit), and of a replay of the API's own SQL.
 */

/** Seats per second of a pgbench run: far above 2 cores. */
const PGBENCH_SEATS_PER_SECOND = 6_000;

export type CeilingRun = { tps: number; clients: number; cycles: number };
export type FlowCeilings = Awaited<ReturnType<typeof flowCeilings>>;

/** Every cycle pgbench counted must be a confirmed booking, a booked seat, a captured payment. */
async function ceilingRun(
  children: ChildProcesses,
  run: Omit<CycleRun, 'seatsPerSecond' | 'priceCents'>,
): Promise<CeilingRun> {
  const { result, eventId } = await pgbenchCycles(children, {
    ...run,
    seatsPerSecond: PGBENCH_SEATS_PER_SECOND,
    priceCents: FLOW_PRICE_CENTS,
  });
  const cycles = result.processed ?? 0;
  const written = await bookedRows(run.url, eventId);
  if (Object.values(written).some((n) => n !== cycles)) {
    throw new BenchError(`${cycles} cycles but ${JSON.stringify(written)} in the database`);
  }
  return { tps: round(result.tps, 1) ?? 0, clients: run.clients, cycles };
}

/** Both ceilings, the minimal SQL at the load's clients and at 10; a failed one noted. */
export async function flowCeilings(
  children: ChildProcesses,
  url: string,
  o: { customers: number; duration: number },
  anomalies: string[],
  log: (message: string) => void,
) {
  const clients = await pgbenchClients(o.customers);
  if (clients < o.customers) anomalies.push(`pgbench ran ${clients} clients only`);
  const seconds = Math.max(1, Math.round(o.duration));
  const attempt = (label: string, work: () => Promise<CeilingRun>) => {
    log(`pgbench: ${label}, ${seconds} s`);
    return work().catch((error: Error) => {
      anomalies.push(`pgbench ${label}: ${error.message}`);
      return null;
    });
  };
  const minimalRuns: CeilingRun[] = [];
  for (const [i, n] of [...new Set([clients, 10])].entries()) {
    const done = await attempt(`minimal SQL, ${n} clients`, () =>
      ceilingRun(children, { url, script: MINIMAL_FLOW_SCRIPT, clients: n, seconds, run: i + 1 }),
    );
    if (done) minimalRuns.push(done);
  }
  const ownSql = await attempt(`own-SQL replay, ${clients} clients`, () =>
    ceilingRun(children, {
      url,
      script: OWN_SQL_FLOW_SCRIPT,
      clients,
      seconds,
      run: 9,
      vars: ownSqlFlowVariables(),
    }),
  );
  const minimal = [...minimalRuns].sort((a, b) => b.tps - a.tps)[0] ?? null;
  return { minimal, minimalRuns, ownSql };
}
