import { setTimeout as sleep } from 'node:timers/promises';
import {
  type Child,
  type ChildProcesses,
  API_MAIN,
  apiNodeOptions,
  benchApiEnv,
} from '../support/bench/child-processes';
import {
  type BenchCustomer,
  type BenchEvent,
  call,
  createEvent,
  expectStatus,
  registerCustomers,
  warmCaches,
} from '../support/bench/bench-http';
import type { PgbenchResult } from '../support/bench/bench-postgres';
import { NO_GATEWAY, waitReady } from '../support/bench/bench-run';
import { drainOutbox } from '../support/bench/bench-state';
import { logger } from '../support/bench/cli';
import { type LoadRequest, type LoadResult, loadWindow } from '../support/bench/load';
import { HOLD_SCRIPT, HOLD_TTL_SECONDS } from '../support/bench/minimal-sql';
import type { CpuSampler } from '../support/bench/proc-stats';
import { mapLimit, round } from '../support/bench/stats';
import { PgCountingProxy } from '../support/pg-counting-proxy';
import { freePort } from '../support/redis-server';
import { HOLD_PRICE_CENTS, OWN_SQL_HOLD_SCRIPT } from './own-sql-hold';
import { pgbenchClients, pgbenchCycles } from './pgbench-cycles';

/*
 * The suite's HTTP part, piece by piece: one built API, four fixed-request windows on autocannon
 * (distinct-seat holds, the 409 path, /health/live, the seat map), the statements a hold costs on
 * the wire, and the pgbench ceilings of a hold on the same database with the API stopped.
 */

export const WINDOWS = ['holds', 'conflicts', 'live', 'seats'] as const;
export type WindowName = (typeof WINDOWS)[number];

const log = logger('all');
const SEATS_PER_EVENT = 10_000; // the API's cap per event
const HOLD_SEATS_PER_SECOND = 4_000; // far above what 2 cores reach
const PGBENCH_SEATS_PER_SECOND = 9_000;
const CONFLICT_CUSTOMERS = 256;
const COUNTED_HOLDS = 200;
const ISOLATED_HOLDS = 40;
export const PROFILE_SECONDS = 6;

export interface HttpOptions {
  connections: number;
  seconds: number;
  warmupSeconds: number;
  redisUrl: string;
  databaseUrl: string;
  adminToken: string;
  sampler: () => CpuSampler;
}

/** What the pgbench ceilings of a hold need: the load's connections, the window's length. */
export type CeilingOptions = Pick<HttpOptions, 'connections' | 'seconds' | 'databaseUrl'>;

/** What the windows need: events and customers made once, and the next unused seat. */
export interface HttpState {
  holdEvents: BenchEvent[];
  seatsEvent: BenchEvent;
  holdCustomers: BenchCustomer[];
  conflictCustomers: BenchCustomer[];
  heldSeat: string;
  nextSeat: number;
}

export interface WindowResult extends LoadResult {
  exhausted: boolean;
  outboxPendingBefore: number;
}

export interface CeilingRun extends PgbenchResult {
  script: 'one-statement hold' | 'own-SQL replay';
}

/** Statements and round trips on the wire per hold, its outbox fan-out included. */
export interface WireCost {
  concurrency: number;
  holds: number;
  statements: number | null;
  roundTrips: number | null;
}

/** The built API for holds (no payment gateway); `extra` for a counted or a profiled run. */
export async function startApi(
  children: ChildProcesses,
  options: HttpOptions,
  name: string,
  extra: { databaseUrl?: string; profileDir?: string } = {},
): Promise<Child> {
  const port = await freePort();
  const profiling = extra.profileDir ? ['--cpu-prof', `--cpu-prof-dir=${extra.profileDir}`] : [];
  const env = benchApiEnv({
    PORT: String(port),
    DATABASE_URL: extra.databaseUrl ?? options.databaseUrl,
    REDIS_URL: options.redisUrl,
    LOCK_MODE: 'redis',
    GATEWAY_URL: NO_GATEWAY,
    ADMIN_TOKEN: options.adminToken,
    HOLD_TTL_SECONDS: String(HOLD_TTL_SECONDS),
  });
  const api = children.node(name, API_MAIN, env, [...profiling, ...apiNodeOptions()]);
  api.url = `http://127.0.0.1:${port}`;
  await waitReady(api, '/health/ready');
  return api;
}

/** Events and customers for every window (and one profiled run), the hammered seat held. */
export async function prepareState(api: Child, options: HttpOptions): Promise<HttpState> {
  const seconds = options.warmupSeconds * 2 + options.seconds + PROFILE_SECONDS;
  const events = Math.ceil((HOLD_SEATS_PER_SECOND * seconds) / SEATS_PER_EVENT);
  log(`http: ${events} events of ${SEATS_PER_EVENT} seats, customers`);
  const holdEvents: BenchEvent[] = [];
  for (let i = 0; i < events; i += 1) {
    holdEvents.push(await createEvent(api.url, options.adminToken, `Holds ${i + 1}`, 100, 100));
  }
  const seatsEvent = await createEvent(api.url, options.adminToken, 'Availability', 10, 100);
  const state: HttpState = {
    holdEvents,
    seatsEvent,
    holdCustomers: await registerCustomers(api.url, options.connections, 'all-h'),
    conflictCustomers: await registerCustomers(api.url, CONFLICT_CUSTOMERS, 'all-c'),
    heldSeat: seatsEvent.labels[0],
    nextSeat: 0,
  };
  // The seat the 409 path hammers: held by someone who is not among the hammering customers.
  const [owner] = await registerCustomers(api.url, 1, 'all-owner');
  const body = { eventId: seatsEvent.id, seatIds: [state.heldSeat] };
  expectStatus(await call(api.url, 'POST', '/bookings', { token: owner.token, body }), 201, 'hold');
  await warmUp(api, state);
  return state;
}

export function warmUp(api: Child, state: HttpState): Promise<void> {
  const customers = [...state.holdCustomers, ...state.conflictCustomers];
  return warmCaches(api.url, customers, [...state.holdEvents, state.seatsEvent]);
}

/** The request generator of a window; `exhausted` turns true if the holds ran out of seats. */
function requests(
  name: WindowName,
  state: HttpState,
): { next: () => LoadRequest; expected: number; exhausted: () => boolean } {
  let turn = 0;
  let exhausted = false;
  const total = state.holdEvents.length * SEATS_PER_EVENT;
  const holdBody = (): string => {
    if (state.nextSeat >= total) exhausted = true;
    const n = Math.min(state.nextSeat++, total - 1);
    const event = state.holdEvents[Math.floor(n / SEATS_PER_EVENT)];
    return JSON.stringify({ eventId: event.id, seatIds: [event.labels[n % SEATS_PER_EVENT]] });
  };
  const conflictBody = JSON.stringify({ eventId: state.seatsEvent.id, seatIds: [state.heldSeat] });
  // POST /bookings by each customer in turn.
  const booking = (customers: BenchCustomer[], body: () => string) => (): LoadRequest => ({
    method: 'POST',
    path: '/bookings',
    body: body(),
    headers: { authorization: `Bearer ${customers[turn++ % customers.length].token}` },
  });
  const windows: Record<WindowName, { next: () => LoadRequest; expected: number }> = {
    holds: { expected: 201, next: booking(state.holdCustomers, holdBody) },
    conflicts: { expected: 409, next: booking(state.conflictCustomers, () => conflictBody) },
    live: { expected: 200, next: () => ({ method: 'GET', path: '/health/live' }) },
    seats: {
      expected: 200,
      next: () => ({ method: 'GET', path: `/events/${state.seatsEvent.id}/seats` }),
    },
  };
  return { ...windows[name], exhausted: () => exhausted };
}

export async function measureWindow(
  name: WindowName,
  api: Child,
  state: HttpState,
  options: HttpOptions,
  seconds = options.seconds,
): Promise<WindowResult> {
  // No fan-out left over from the last window.
  const outboxPendingBefore = await drainOutbox(options.databaseUrl, 60_000);
  const load = requests(name, state);
  log(
    `http: ${name}, ${options.connections} connections, ${options.warmupSeconds} s warm-up + ${seconds} s`,
  );
  const result = await loadWindow({
    url: api.url,
    connections: options.connections,
    seconds,
    warmupSeconds: options.warmupSeconds,
    expected: load.expected,
    next: load.next,
    sampler: options.sampler(),
  });
  return { ...result, exhausted: load.exhausted(), outboxPendingBefore };
}

/**
 * Statements per hold on the wire: a second API whose DATABASE_URL goes through a counting proxy
 * holds seats, its outbox fanned out before the next count. "isolated": one hold, then its
 * fan-out, then the next (a quiet sale); "16 at a time": the dispatcher may batch their fan-out.
 * The idle rate measured before (the dispatcher's poll) is subtracted.
 */
export async function wireCostPerHold(
  children: ChildProcesses,
  options: HttpOptions,
): Promise<WireCost[]> {
  const target = new URL(options.databaseUrl);
  const proxy = await PgCountingProxy.start(target.hostname, Number(target.port || 5432));
  const api = await startApi(children, options, 'API (counted)', {
    databaseUrl: proxy.urlFor(options.databaseUrl),
  });
  try {
    const event = await createEvent(api.url, options.adminToken, 'Counted', 3, 100);
    const customers = await registerCustomers(api.url, 16, 'all-counted');
    await warmCaches(api.url, customers, [event]);
    await drainOutbox(options.databaseUrl, 60_000);
    const idleStart = proxy.counts().statements;
    await sleep(3_000);
    const counted = { api, proxy, databaseUrl: options.databaseUrl, event, customers };
    const idlePerSecond = (proxy.counts().statements - idleStart) / 3;
    const labels = event.labels;
    return [
      await countHolds(counted, idlePerSecond, 1, labels.slice(0, ISOLATED_HOLDS)),
      await countHolds(
        counted,
        idlePerSecond,
        16,
        labels.slice(ISOLATED_HOLDS, ISOLATED_HOLDS + COUNTED_HOLDS),
      ),
    ];
  } finally {
    await children.stop(api);
    await proxy.stop();
  }
}

interface Counted {
  api: Child;
  proxy: PgCountingProxy;
  databaseUrl: string;
  event: BenchEvent;
  customers: BenchCustomer[];
}

/** Holds `labels`, `concurrency` at a time, each batch's fan-out drained; the wire per hold. */
async function countHolds(
  { api, proxy, databaseUrl, event, customers }: Counted,
  idlePerSecond: number,
  concurrency: number,
  labels: string[],
): Promise<WireCost> {
  const hold = async (label: string, i: number): Promise<void> => {
    const body = { eventId: event.id, seatIds: [label] };
    const token = customers[i % customers.length].token;
    expectStatus(await call(api.url, 'POST', '/bookings', { token, body }), 201, 'counted hold');
    if (concurrency === 1) await drainOutbox(databaseUrl, 60_000);
  };
  const before = proxy.counts();
  const started = performance.now();
  await mapLimit(labels, concurrency, hold);
  await drainOutbox(databaseUrl, 60_000);
  const after = proxy.counts();
  const idle = idlePerSecond * ((performance.now() - started) / 1000);
  const per = (n: number) => round((n - idle) / labels.length, 2);
  return {
    concurrency,
    holds: labels.length,
    statements: per(after.statements - before.statements),
    roundTrips: per(after.roundTrips - before.roundTrips),
  };
}

async function pgbenchHolds(
  children: ChildProcesses,
  options: CeilingOptions,
  script: CeilingRun['script'],
  wanted: number,
  run: number,
): Promise<CeilingRun> {
  const clients = await pgbenchClients(wanted);
  const seconds = Math.max(1, Math.round(options.seconds));
  log(`http: pgbench ${script}, ${clients} clients x ${seconds} s`);
  const { result } = await pgbenchCycles(children, {
    url: options.databaseUrl,
    script: script === 'own-SQL replay' ? OWN_SQL_HOLD_SCRIPT : HOLD_SCRIPT,
    clients,
    seconds,
    run,
    seatsPerSecond: PGBENCH_SEATS_PER_SECOND,
    priceCents: HOLD_PRICE_CENTS,
  });
  return { ...result, script };
}

/**
 * The ceilings of a hold, the API stopped: the one-statement hold (the physical limit) at 10 and
 * 32 clients, and today's own SQL replayed at the load's connections and at the API's pool size.
 */
export async function holdCeilings(
  children: ChildProcesses,
  options: CeilingOptions,
): Promise<CeilingRun[]> {
  const plan: [CeilingRun['script'], number][] = [
    ['one-statement hold', 10],
    ['one-statement hold', 32],
    ['own-SQL replay', options.connections],
    ['own-SQL replay', 10],
  ];
  const runs: CeilingRun[] = [];
  for (const [script, clients] of plan) {
    runs.push(await pgbenchHolds(children, options, script, clients, runs.length + 1));
  }
  return runs;
}

/** The best run of a script: on a shared machine noise only ever slows a run down. */
export function bestCeiling(
  runs: readonly CeilingRun[],
  script: CeilingRun['script'],
): CeilingRun | null {
  return runs
    .filter((run) => run.script === script)
    .reduce<CeilingRun | null>(
      (best, run) => (!best || (run.tps ?? 0) > (best.tps ?? 0) ? run : best),
      null,
    );
}
