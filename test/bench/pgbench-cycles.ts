import type { ChildProcesses } from '../support/bench/child-processes';
import * as pg from '../support/bench/bench-postgres';

/*
 * The pgbench ceilings of the hold and flow benchmarks: a script that takes one seat per cycle
 * (CYCLE_VARIABLES of minimal-sql.ts) on an event of its own, seated for the whole run.
 */

/** `wanted` clients, or fewer when a shared server has not that many connections to spare. */
export async function pgbenchClients(wanted: number): Promise<number> {
  return Math.max(1, Math.min(wanted, (await pg.availableConnections()) - 5));
}

export interface CycleRun {
  url: string;
  script: string;
  clients: number;
  seconds: number;
  /** Numbers the run's bookings apart from every other run's on the same database. */
  run: number;
  seatsPerSecond: number;
  priceCents: number;
  vars?: Record<string, string | number>;
  /** A minimal script: run without the schema's triggers (see runPgbench). */
  physical?: boolean;
}

/** Runs `o.script`; answers pgbench's figures and the event it booked seats of. */
export async function pgbenchCycles(children: ChildProcesses, o: CycleRun) {
  const { url, script, clients, seconds } = o;
  const k = Math.ceil((o.seatsPerSecond * seconds) / clients) + 100;
  const seats = { seats: clients * k, customers: clients, priceCents: o.priceCents };
  const eventId = await pg.preparePgbench(url, seats);
  const [runbase, fencebase] = [o.run * 100_000_000, '1000000000000000'];
  const vars = { ev: eventId, k, seq: 0, runbase, fencebase, ...o.vars };
  const physical = o.physical;
  const result = await pg.runPgbench(children, { url, script, clients, seconds, vars, physical });
  return { result, eventId };
}
