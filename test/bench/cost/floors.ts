import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import * as pg from '../../support/bench/bench-postgres';
import { loadWindow } from '../../support/bench/load';
import { HOLD_SCRIPT, MINIMAL_FLOW_SCRIPT, OUTBOX_SCRIPT } from '../../support/bench/minimal-sql';
import { pgbenchClients } from '../pgbench-cycles';
import { type CpuTotals, cpuBetween } from './process-cpu';
import { children, log, type Stack } from './cost-stack';
import { CONNECTIONS } from './operations';
import { CLAIM_BATCH, type OutboxSetup, pendingForFloor } from './outbox';

/*
 * The floors, same run: PostgreSQL CPU per pgbench transaction of the minimal SQL (the API
 * stopped), the API's CPU per GET /health/live, the simulator's per payment intent, Redis's per
 * SET NX + DEL pair.
 */

type PgbenchOptions = Parameters<typeof pg.runPgbench>[1];

export const PGBENCH_CLIENTS = 10;
/** Seats per second the pgbench event is made for: above what pgbench reaches here. */
const PGBENCH_SEATS_PER_SECOND = 9_000;
const PRICE_CENTS = 5_000;

export interface PgFloor {
  transactions: number;
  /** PostgreSQL CPU µs per transaction (per message for the outbox). */
  us: number;
  tps: number | null;
}

type Run = { cpu: number; transactions: number; tps: number | null };

/** PostgreSQL's CPU over one pgbench run (after `prepare`, which is not counted). */
async function pgbenchRun(stack: Stack, prepare: () => Promise<PgbenchOptions>): Promise<Run> {
  const o = await prepare();
  const start = stack.cpu.read();
  const result = await pg.runPgbench(children, o);
  const cpu = cpuBetween(start, stack.cpu.read()).PostgreSQL;
  return { cpu, transactions: result.processed ?? 0, tps: result.tps };
}

/**
 * PostgreSQL CPU per transaction (per `per` of its work) from a short and a full run: their
 * difference leaves out what every run pays once (new backends, their cold caches), which the
 * API's pooled connections do not pay per operation.
 */
async function pgbenchFloor(
  stack: Stack,
  prepare: (scale: 'short' | 'full') => Promise<PgbenchOptions>,
  per = 1,
): Promise<PgFloor> {
  const short = await pgbenchRun(stack, () => prepare('short'));
  const full = await pgbenchRun(stack, () => prepare('full'));
  const transactions = full.transactions - short.transactions;
  const us = transactions > 0 ? ((full.cpu - short.cpu) * 1e6) / (transactions * per) : NaN;
  return { transactions: full.transactions, us, tps: full.tps };
}

/** The short run's length, and the full run's (at least 2 s longer). */
function lengths(seconds: number): { short: number; full: number } {
  const short = Math.max(1, Math.floor(seconds / 4));
  return { short, full: Math.max(seconds, short + 2) };
}

/** pgbench of HOLD_SCRIPT or MINIMAL_FLOW_SCRIPT (one booking a transaction), short and full. */
export function seatFloor(stack: Stack, script: 'hold' | 'flow', seconds: number, runNo: number) {
  const text = script === 'hold' ? HOLD_SCRIPT : MINIMAL_FLOW_SCRIPT;
  let turn = runNo * 2;
  return pgbenchFloor(stack, async (scale) => {
    const clients = await pgbenchClients(PGBENCH_CLIENTS);
    const runSeconds = lengths(seconds)[scale];
    const k = Math.ceil((PGBENCH_SEATS_PER_SECOND * runSeconds) / clients) + 100;
    const seats = { seats: clients * k, customers: clients, priceCents: PRICE_CENTS };
    const ev = await pg.preparePgbench(stack.apiDbUrl, seats);
    log(`floor: pgbench ${script}, ${clients} clients × ${runSeconds} s`);
    const runbase = turn++ * 100_000_000;
    const vars = { ev, k, seq: 0, runbase, fencebase: '1000000000000000' };
    return {
      url: stack.apiDbUrl,
      script: text,
      clients,
      seconds: runSeconds,
      vars,
      physical: true,
    };
  });
}

/** pgbench of the outbox's minimal SQL over pending rows made for it: ~`messages`, and a quarter. */
export function outboxFloor(stack: Stack, s: OutboxSetup, messages: number) {
  return pgbenchFloor(
    stack,
    async (scale) => {
      const clients = await pgbenchClients(8);
      const full = Math.max(4, Math.ceil(messages / (clients * CLAIM_BATCH)));
      const transactions = scale === 'full' ? full : Math.ceil(full / 4);
      await pendingForFloor(stack, s, clients * transactions * CLAIM_BATCH);
      log(`floor: pgbench outbox claim, ${clients} clients × ${transactions} claims`);
      const script = OUTBOX_SCRIPT;
      return { url: stack.apiDbUrl, script, clients, seconds: 240, transactions, physical: true };
    },
    CLAIM_BATCH,
  );
}

/** GET /health/live at full speed: the API's CPU per request is its framework floor. */
export async function healthLoad(stack: Stack, seconds: number) {
  const next = () => ({ method: 'GET' as const, path: '/health/live' });
  const url = stack.api.url;
  const result = await loadWindow({ url, connections: CONNECTIONS, seconds, expected: 200, next });
  return { ops: result.ok, detail: { perSecond: result.perSecond, errors: result.errors } };
}

/** The simulator's own minimal intent: POST /v1/payment_intents (manual capture), a key each. */
export async function intentLoad(stack: Stack, seconds: number) {
  const body = JSON.stringify({
    amount: 4_200,
    currency: 'eur',
    payment_method: 'pm_card_visa',
    capture_method: 'manual',
  });
  const next = () => ({
    method: 'POST' as const,
    path: '/v1/payment_intents',
    body,
    headers: { 'idempotency-key': randomUUID() },
  });
  const url = stack.gateway.url;
  const result = await loadWindow({ url, connections: CONNECTIONS, seconds, expected: 200, next });
  const detail = { perSecond: result.perSecond, errors: result.errors, statuses: result.statuses };
  return { ops: result.ok, detail };
}

/** SET NX PX + DEL pairs on 8 connections, 8 loops each, for `seconds`: Redis CPU per pair. */
export async function redisFloor(stack: Stack, seconds: number): Promise<PgFloor | null> {
  if (stack.cpu.pids.redis === null) return null;
  const clients = Array.from({ length: 8 }, () => new Redis(stack.redisUrl));
  try {
    await Promise.all(clients.map((client) => client.ping()));
    let pairs = 0;
    const deadline = performance.now() + seconds * 1000;
    const start = stack.cpu.read();
    const loop = async (client: Redis, n: number) => {
      for (const key = `cost-floor:${n}`; performance.now() < deadline; pairs += 1) {
        await client.set(key, 'x', 'PX', 10_000, 'NX');
        await client.del(key);
      }
    };
    await Promise.all(Array.from({ length: 64 }, (_, n) => loop(clients[n % 8], n)));
    const used = cpuBetween(start, stack.cpu.read()).Redis;
    return { transactions: pairs, us: (used * 1e6) / pairs, tps: pairs / seconds };
  } finally {
    clients.forEach((client) => client.disconnect());
  }
}

export type Floors = {
  holdSql: PgFloor;
  flowSql: PgFloor;
  outboxSql: PgFloor;
  redis: PgFloor | null;
  health: CpuTotals;
  intent: CpuTotals;
};
