import { setTimeout as sleep } from 'node:timers/promises';
import * as http from '../support/bench/bench-http';
import type { BenchEvent, BenchCustomer } from '../support/bench/bench-http';
import type { PgbenchResult } from '../support/bench/bench-postgres';
import type { BenchRun } from '../support/bench/bench-run';
import { drainOutbox } from '../support/bench/bench-state';
import type { Child } from '../support/bench/child-processes';
import { logger } from '../support/bench/cli';
import { type LoadRequest, type LoadResult, loadWindow } from '../support/bench/load';
import { HOLD_SCRIPT, HOLD_TTL_SECONDS } from '../support/bench/minimal-sql';
import type { CpuSampler } from '../support/bench/proc-stats';
import { mapLimit, round } from '../support/bench/stats';
import { PgCountingProxy } from '../support/pg-counting-proxy';
import { HOLD_PRICE_CENTS, OWN_SQL_HOLD_SCRIPT } from './own-sql-hold';
import { pgbenchClients, pgbenchCycles } from './pgbench-cycles';

/*
 * The suite's HTTP part: one built API, four fixed-request windows on autocannon (distinct-seat
 * holds, the 409 path, /health/live, the seat map), the statements a hold costs on the wire, and
 * the pgbench ceilings of a hold on the same database with the API stopped.
 */

export const WINDOWS = ['holds', 'conflicts', 'live', 'seats'] as const;
export type WindowName = (typeof WINDOWS)[number];
export const PROFILE_SECONDS = 6;

const log = logger('all');
const SEATS_PER_EVENT = 10_000; // the API's cap per event
const HOLD_SEATS_PER_SECOND = 4_000; // far above what 2 cores reach
const PGBENCH_SEATS_PER_SECOND = 9_000;
const [CONFLICT_CUSTOMERS, COUNTED_HOLDS, ISOLATED_HOLDS] = [256, 200, 40];

export interface HttpOptions {
  connections: number;
  seconds: number;
  warmupSeconds: number;
  redisUrl: string;
  databaseUrl: string;
  adminToken: string;
  sampler: () => CpuSampler;
}

/** Events and customers made once, and the next unused seat. */
export interface HttpState {
  holdEvents: BenchEvent[];
  seatsEvent: BenchEvent;
  holdCustomers: BenchCustomer[];
  conflictCustomers: BenchCustomer[];
  heldSeat: string;
  nextSeat: number;
}

export type WindowResult = LoadResult & { exhausted: boolean; outboxPendingBefore: number };
export type CeilingRun = PgbenchResult & { script: 'one-statement hold' | 'own-SQL replay' };
/** Statements and round trips on the wire per hold, its outbox fan-out included. */
export type WireCost = {
  concurrency: number;
  holds: number;
  statements: number | null;
  roundTrips: number | null;
};

/** The built API for holds (no payment gateway); `extra` for a counted or a profiled run. */
export function startApi(
  run: BenchRun,
  o: HttpOptions,
  name: string,
  extra: { databaseUrl?: string; profileDir?: string } = {},
): Promise<Child> {
  return run.startApi({
    name,
    database: extra.databaseUrl ?? o.databaseUrl,
    redis: o.redisUrl,
    adminToken: o.adminToken,
    env: { HOLD_TTL_SECONDS: String(HOLD_TTL_SECONDS) },
    nodeOptions: extra.profileDir ? ['--cpu-prof', `--cpu-prof-dir=${extra.profileDir}`] : [],
  });
}

/** Events and customers for every window (and one profiled run), the hammered seat held. */
export async function prepareState(api: Child, o: HttpOptions): Promise<HttpState> {
  const seconds = o.warmupSeconds * 2 + o.seconds + PROFILE_SECONDS;
  const events = Math.ceil((HOLD_SEATS_PER_SECOND * seconds) / SEATS_PER_EVENT);
  log(`http: ${events} events of ${SEATS_PER_EVENT} seats, customers`);
  const holdEvents = await mapLimit(Array.from({ length: events }), 1, (_, i) =>
    http.createEvent(api.url, o.adminToken, `Holds ${i + 1}`, 100, 100),
  );
  const seatsEvent = await http.createEvent(api.url, o.adminToken, 'Availability', 10, 100);
  const state: HttpState = {
    holdEvents,
    seatsEvent,
    holdCustomers: await http.registerCustomers(api.url, o.connections, 'all-h'),
    conflictCustomers: await http.registerCustomers(api.url, CONFLICT_CUSTOMERS, 'all-c'),
    heldSeat: seatsEvent.labels[0],
    nextSeat: 0,
  };
  // The seat the 409 path hammers: held by someone who is not among the hammering customers.
  const [owner] = await http.registerCustomers(api.url, 1, 'all-owner');
  const body = { eventId: seatsEvent.id, seatIds: [state.heldSeat] };
  const held = await http.call(api.url, 'POST', '/bookings', { token: owner.token, body });
  http.expectStatus(held, 201, 'hold');
  await warmUp(api, state);
  return state;
}

export function warmUp(api: Child, state: HttpState): Promise<void> {
  const customers = [...state.holdCustomers, ...state.conflictCustomers];
  return http.warmCaches(api.url, customers, [...state.holdEvents, state.seatsEvent]);
}

/** The request generator of a window; `exhausted` turns true if the holds ran out of seats. */
function requests(name: WindowName, state: HttpState) {
  let [turn, exhausted] = [0, false];
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
  const get = (path: string) => (): LoadRequest => ({ method: 'GET', path });
  const windows = {
    holds: { expected: 201, next: booking(state.holdCustomers, holdBody) },
    conflicts: { expected: 409, next: booking(state.conflictCustomers, () => conflictBody) },
    live: { expected: 200, next: get('/health/live') },
    seats: { expected: 200, next: get(`/events/${state.seatsEvent.id}/seats`) },
  };
  return { ...windows[name], exhausted: () => exhausted };
}

export async function measureWindow(
  name: WindowName,
  api: Child,
  state: HttpState,
  o: HttpOptions,
  seconds = o.seconds,
): Promise<WindowResult> {
  // No fan-out left over from the last window.
  const outboxPendingBefore = await drainOutbox(o.databaseUrl, 60_000);
  const load = requests(name, state);
  log(`http: ${name}, ${o.connections} connections, ${o.warmupSeconds} s warm-up + ${seconds} s`);
  const result = await loadWindow({
    ...{ url: api.url, connections: o.connections, seconds, warmupSeconds: o.warmupSeconds },
    ...{ expected: load.expected, next: load.next, sampler: o.sampler() },
  });
  return { ...result, exhausted: load.exhausted(), outboxPendingBefore };
}

/**
 * Statements per hold on the wire: a second API behind a counting proxy holds seats, its outbox
 * fanned out before the next count. "isolated": one hold, its fan-out, the next (a quiet sale);
 * "16 at a time": the dispatcher may batch their fan-out. The idle rate (the dispatcher's poll)
 * measured before is subtracted.
 */
export async function wireCostPerHold(run: BenchRun, o: HttpOptions): Promise<WireCost[]> {
  const target = new URL(o.databaseUrl);
  const proxy = await PgCountingProxy.start(target.hostname, Number(target.port || 5432));
  const databaseUrl = proxy.urlFor(o.databaseUrl);
  const api = await startApi(run, o, 'API (counted)', { databaseUrl });
  try {
    const event = await http.createEvent(api.url, o.adminToken, 'Counted', 3, 100);
    const customers = await http.registerCustomers(api.url, 16, 'all-counted');
    await http.warmCaches(api.url, customers, [event]);
    await drainOutbox(o.databaseUrl, 60_000);
    const idleStart = proxy.counts().statements;
    await sleep(3_000);
    const idlePerSecond = (proxy.counts().statements - idleStart) / 3;
    /** Holds `labels`, `concurrency` at a time, each batch's fan-out drained; the wire per hold. */
    const count = async (concurrency: number, labels: string[]): Promise<WireCost> => {
      const before = proxy.counts();
      const started = performance.now();
      await mapLimit(labels, concurrency, async (label, i) => {
        const body = { eventId: event.id, seatIds: [label] };
        const answer = await http.call(api.url, 'POST', '/bookings', {
          token: customers[i % customers.length].token,
          body,
        });
        http.expectStatus(answer, 201, 'counted hold');
        if (concurrency === 1) await drainOutbox(o.databaseUrl, 60_000);
      });
      await drainOutbox(o.databaseUrl, 60_000);
      const after = proxy.counts();
      const idle = idlePerSecond * ((performance.now() - started) / 1000);
      const per = (n: number) => round((n - idle) / labels.length, 2);
      const statements = per(after.statements - before.statements);
      const roundTrips = per(after.roundTrips - before.roundTrips);
      return { concurrency, holds: labels.length, statements, roundTrips };
    };
    const labels = event.labels;
    return [
      await count(1, labels.slice(0, ISOLATED_HOLDS)),
      await count(16, labels.slice(ISOLATED_HOLDS, ISOLATED_HOLDS + COUNTED_HOLDS)),
    ];
  } finally {
    await run.children.stop(api);
    await proxy.stop();
  }
}

/**
 * The ceilings of a hold, the API stopped: the one-statement hold (the physical limit) at 10 and
 * 32 clients, and today's own SQL replayed at the load's connections and at the API's pool size.
 */
export async function holdCeilings(
  run: BenchRun,
  o: Pick<HttpOptions, 'connections' | 'seconds' | 'databaseUrl'>,
): Promise<CeilingRun[]> {
  const plan: [CeilingRun['script'], number][] = [
    ['one-statement hold', 10],
    ['one-statement hold', 32],
    ['own-SQL replay', o.connections],
    ['own-SQL replay', 10],
  ];
  const runs: CeilingRun[] = [];
  const seconds = Math.max(1, Math.round(o.seconds));
  for (const [script, wanted] of plan) {
    const clients = await pgbenchClients(wanted);
    log(`http: pgbench ${script}, ${clients} clients x ${seconds} s`);
    const { result } = await pgbenchCycles(run.children, {
      ...{ url: o.databaseUrl, clients, seconds, run: runs.length + 1 },
      script: script === 'own-SQL replay' ? OWN_SQL_HOLD_SCRIPT : HOLD_SCRIPT,
      physical: script !== 'own-SQL replay',
      seatsPerSecond: PGBENCH_SEATS_PER_SECOND,
      priceCents: HOLD_PRICE_CENTS,
    });
    runs.push({ ...result, script });
  }
  return runs;
}

/** The best run of a script: on a shared machine noise only ever slows a run down. */
export function bestCeiling(runs: readonly CeilingRun[], script: CeilingRun['script']) {
  const ofScript = runs.filter((run) => run.script === script);
  return ofScript.reduce<CeilingRun | null>(
    (best, run) => (!best || (run.tps ?? 0) > (best.tps ?? 0) ? run : best),
    null,
  );
}
