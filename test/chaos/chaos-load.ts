/*
 * The chaos run's load and faults. Customers hold hot and cold seats, pay (visa, declined, async,
 * slow...), release and cancel through the proxy; every request is recorded with its status and
 * time, and what each customer was told about a booking is kept for the checks. Faults run on a
 * schedule in seconds from the start of the load; --quick runs every kind once.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Agent, Dispatcher } from 'undici';
import { type Answer, call, type CallOptions } from '../support/bench/bench-http';
import { withTimeout } from '../support/bench/cli';
import type { PrivatePostgres } from '../support/private-postgres';
import type { RedisServer } from '../support/redis-server';
import { BACKEND_HEADER } from '../support/round-robin-proxy';
import { clock, log, type Supervised } from './chaos-cluster';

export const HOLD_TTL_SECONDS = 5;
export const GATEWAY_SLOW_MS = 4_000;
export const REQUEST_TIMEOUT_MS = 20_000;

export const bump = (map: Record<string, number>, key: string | number, n = 1): void => {
  map[key] = (map[key] ?? 0) + n;
};

export type FiveHundred = { kind: string; from: number; to: number; backend: string; body: string };
export type Reply = Omit<Answer, 'status'> & { status: number | string };
export type SeatMap = { id: string; labels: string[] };
type Method = Dispatcher.HttpMethod;

function unanswered(error: Error & { code?: string }): Reply {
  const timedOut = error.name === 'TimeoutError' || error.name === 'AbortError';
  const status = timedOut ? 'timeout' : `error:${error.code ?? error.name}`;
  return { status, body: null, text: error.message, headers: {} };
}

/**
 * Requests through `baseUrl` (the proxy), never throwing: each recorded with its status
 * ('timeout' or 'error:<code>' when no answer came) by kind, and every 500 with its time.
 */
export class Traffic {
  total = 0;
  readonly byStatus: Record<string, number> = {};
  readonly byKind: Record<string, Record<string, number>> = {};
  readonly inFlight: Record<string, number> = {};
  readonly fiveHundreds: FiveHundred[] = [];

  constructor(
    private readonly baseUrl: string,
    private readonly dispatcher: Agent,
  ) {}

  /** A request of `kind`; 'setup' requests are not recorded. */
  async call(
    kind: string,
    method: Method,
    route: string,
    options: CallOptions = {},
  ): Promise<Reply> {
    const startedAt = Date.now();
    bump(this.inFlight, kind);
    const request = { ...options, dispatcher: this.dispatcher, timeoutMs: REQUEST_TIMEOUT_MS };
    const answer: Reply = await call(this.baseUrl, method, route, request).catch(unanswered);
    bump(this.inFlight, kind, -1);
    if (kind !== 'setup') this.note(kind, answer, startedAt);
    return answer;
  }

  private note(kind: string, answer: Reply, startedAt: number): void {
    this.total += 1;
    bump(this.byStatus, answer.status);
    bump((this.byKind[kind] ??= {}), answer.status);
    if (answer.status !== 500) return;
    const backend = String(answer.headers[BACKEND_HEADER]);
    const [from, to, body] = [clock.since(startedAt), clock.since(), answer.text.slice(0, 200)];
    this.fiveHundreds.push({ kind, from, to, backend, body });
  }
}

export interface LoadWorld {
  traffic: Traffic;
  events: { hot: SeatMap; cold: SeatMap };
  pg: PrivatePostgres;
  redis: RedisServer[];
  apis: Supervised[];
  gateway: Supervised;
}

export type Fault = { at: number } & (
  | { kind: 'redis-kill'; node: number; downMs: number }
  | { kind: 'flushall' | 'pg-restart' }
  | { kind: 'api-sigkill'; instance: number }
  | { kind: 'api-sigstop'; instance: number; ms: number }
  | { kind: 'gateway-slow'; ms: number; sigstopMs: number }
);

/** In seconds from the start of the load; the order keeps each fault's effect apart. */
export function schedule(quick: boolean, duration: number): Fault[] {
  const at = (fraction: number): number => Math.round(duration * fraction);
  const quickRun: Fault[] = [
    { at: 4, kind: 'redis-kill', node: 0, downMs: 3_000 },
    { at: 9, kind: 'flushall' },
    { at: 13, kind: 'api-sigkill', instance: 2 },
    { at: 21, kind: 'pg-restart' },
    { at: 27, kind: 'api-sigstop', instance: 1, ms: (HOLD_TTL_SECONDS + 3) * 1000 },
    { at: 33, kind: 'gateway-slow', ms: 6_000, sigstopMs: 3_000 },
  ];
  if (quick) return quickRun.filter((fault) => fault.at < duration - 5);
  return [
    { at: at(0.06), kind: 'redis-kill', node: 0, downMs: 5_000 },
    { at: at(0.16), kind: 'flushall' },
    { at: at(0.25), kind: 'gateway-slow', ms: 15_000, sigstopMs: 4_000 },
    { at: at(0.4), kind: 'api-sigstop', instance: 1, ms: (HOLD_TTL_SECONDS + 4) * 1000 },
    { at: at(0.52), kind: 'api-sigkill', instance: 2 },
    { at: at(0.62), kind: 'pg-restart' },
    { at: at(0.72), kind: 'redis-kill', node: 2, downMs: 4_000 },
    { at: at(0.8), kind: 'flushall' },
    { at: at(0.86), kind: 'api-sigkill', instance: 0 },
  ];
}

const pick = <T>(list: readonly T[]): T => list[Math.floor(Math.random() * list.length)];
const definite = (status: number | string): boolean => typeof status === 'number' && status < 500;
/** Payment methods by cumulative share; the rest (4 %) pm_card_flaky. */
const METHODS = { visa: 0.7, declined: 0.8, insufficient_funds: 0.84, async: 0.92, slow: 0.96 };

/** The customers and the fault schedule of one run, and what they saw. */
export class Load {
  stop = false;
  /** Share of payments sent with pm_card_slow (the gateway-slow fault raises it). */
  private slowShare = 0;
  readonly faults: { kind: string; at: number; until: number | null; detail?: string }[] = [];
  /** [begun, accepting again] of each PostgreSQL restart, in seconds from the start. */
  readonly pgWindows: { from: number; to: number | null }[] = [];
  readonly methods: Record<string, number> = {};
  readonly actions: Record<string, number> = { holds: 0, paidLate: 0, payRetries: 0 };
  /** What the customers were told per booking; `uncertain` once a later request had no answer. */
  readonly told = new Map<string, { status: string; uncertain: boolean }>();
  faultError?: string;

  constructor(private readonly world: LoadWorld) {}

  /** The customers for `seconds` (then each ends its turn) while `faults` run at their times. */
  async run(tokens: string[], faults: Fault[], seconds: number): Promise<void> {
    clock.t0 = Date.now();
    const stopTimer = setTimeout(() => (this.stop = true), seconds * 1000);
    const faultRun = this.runFaults(faults).catch((error: Error) => {
      this.faultError = error.message;
      log(`fault schedule failed: ${error.message}`);
    });
    const customers = Promise.all(tokens.map((token) => this.customer(token)));
    await withTimeout(customers, seconds * 1000 + REQUEST_TIMEOUT_MS * 3 + 30_000, 'the load');
    clearTimeout(stopTimer);
    this.stop = true;
    await faultRun;
    // Every process must be running again (a fault that failed half-way leaves it stopped).
    for (const app of [...this.world.apis, this.world.gateway]) app.signal('SIGCONT');
  }

  /** One customer until the load stops: hold, then release, abandon, pay (late), maybe cancel. */
  private async customer(token: string): Promise<void> {
    while (!this.stop) {
      const hot = Math.random() < 0.35;
      const { id: eventId, labels } = hot ? this.world.events.hot : this.world.events.cold;
      const pair = !hot && Math.random() >= 0.8;
      const seatIds = [...new Set([pick(labels), ...(pair ? [pick(labels)] : [])])];
      const body = { eventId, seatIds };
      const hold = await this.world.traffic.call('hold', 'POST', '/bookings', { token, body });
      if (hold.status !== 201 || !hold.body?.id) {
        await sleep(hold.status === 409 ? 50 + Math.random() * 150 : 300);
        continue;
      }
      const id: string = hold.body.id;
      this.told.set(id, { status: 'held', uncertain: false });
      bump(this.actions, 'holds');
      const r = Math.random();
      if (r < 0.08) {
        bump(this.actions, 'released');
        await this.release(token, id);
      } else if (r < 0.14) {
        bump(this.actions, 'abandoned'); // left to expire
      } else {
        if (r < 0.2) {
          bump(this.actions, 'paidLate');
          await sleep((HOLD_TTL_SECONDS + 1.5) * 1000); // the hold lapses: void, not booked
          if (this.stop) break;
        }
        const paid = await this.pay(token, id);
        if (paid === 'declined' && Math.random() < 0.5) await this.pay(token, id, true);
        if (paid === 'confirmed' && Math.random() < (hot ? 0.6 : 0.2)) {
          await sleep(Math.random() * 500);
          bump(this.actions, 'cancelled');
          await this.release(token, id);
        }
      }
      await sleep(50 + Math.random() * 200);
    }
  }

  /** Keeps `status` as what the customer was told, or puts the last answer in doubt. */
  private tell(id: string, answer: Reply, status: unknown): void {
    const entry = this.told.get(id);
    if (typeof status === 'string') this.told.set(id, { status, uncertain: false });
    else if (!definite(answer.status) && entry) entry.uncertain = true;
  }

  private async release(token: string, id: string): Promise<void> {
    const answer = await this.world.traffic.call('delete', 'DELETE', `/bookings/${id}`, { token });
    this.tell(id, answer, answer.status === 200 ? answer.body?.status : undefined);
  }

  /** One payment, asked again once with the same Idempotency-Key when its outcome is unknown. */
  private async pay(token: string, id: string, visa = false): Promise<string> {
    const r = Math.random();
    const drawn = Object.entries(METHODS).find(([, upTo]) => r < upTo)?.[0] ?? 'flaky';
    const method = visa ? 'visa' : Math.random() < this.slowShare ? 'slow' : drawn;
    const body = { paymentMethod: `pm_card_${method}` };
    const options = { token, body, idempotencyKey: randomUUID() };
    bump(this.methods, body.paymentMethod);
    const [traffic, route] = [this.world.traffic, `/bookings/${id}/payments`];
    let answer = await traffic.call('pay', 'POST', route, options);
    // Unknown outcome, or the first attempt still in flight (409 + Retry-After): ask again.
    if (!definite(answer.status) || (answer.status === 409 && answer.headers['retry-after'])) {
      await sleep(answer.status === 409 ? 1_000 : 500);
      bump(this.actions, 'payRetries');
      answer = await traffic.call('pay-retry', 'POST', route, options);
    }
    const status = answer.status === 201 ? answer.body?.booking?.status : undefined;
    this.tell(id, answer, status);
    return typeof status === 'string' ? status : answer.status === 402 ? 'declined' : 'other';
  }

  private async runFaults(faults: Fault[]): Promise<void> {
    for (const fault of faults) {
      const wait = clock.t0 + fault.at * 1000 - Date.now();
      if (wait > 0) await sleep(wait);
      if (this.stop) break;
      const entry: Load['faults'][number] = { kind: fault.kind, at: clock.since(), until: null };
      this.faults.push(entry);
      log(`fault at ${entry.at.toFixed(1)} s: ${fault.kind}`);
      entry.detail = await withTimeout(this.inject(fault), 90_000, `fault ${fault.kind}`);
      entry.until = clock.since();
    }
  }

  /** Injects `fault`; answers what was done, for the report. */
  private async inject(fault: Fault): Promise<string> {
    const { redis, apis, gateway, pg } = this.world;
    const secondsSince = (from: number): string => ((Date.now() - from) / 1000).toFixed(1);
    switch (fault.kind) {
      case 'redis-kill': {
        await redis[fault.node].kill();
        await sleep(fault.downMs);
        await redis[fault.node].restart();
        return `node ${fault.node} (:${redis[fault.node].port}) SIGKILL, restarted empty after ${fault.downMs / 1000} s`;
      }
      case 'flushall': {
        const flush = (node: RedisServer) => node.flushAll().then(() => 'OK', String);
        const answers = redis.map(flush);
        return `FLUSHALL on ${redis.length} nodes: ${(await Promise.all(answers)).join(', ')}`;
      }
      case 'api-sigkill': {
        const deadline = Date.now() + 5_000; // mid-payment: wait a little for one in flight
        while (!(this.world.traffic.inFlight.pay > 0) && Date.now() < deadline) await sleep(10);
        const inFlight = this.world.traffic.inFlight.pay ?? 0;
        await apis[fault.instance].kill();
        const down = Date.now();
        await apis[fault.instance].start('/health/ready', 60_000);
        return `instance ${fault.instance} SIGKILL with ${inFlight} payments in flight at the proxy, restarted, ready after ${secondsSince(down)} s`;
      }
      case 'pg-restart': {
        const window: Load['pgWindows'][number] = { from: clock.since(), to: null };
        this.pgWindows.push(window);
        await pg.restart();
        await pg.waitReady('postgres', 30_000);
        window.to = clock.since();
        return `pg_ctl restart -m fast; accepting again after ${(window.to - window.from).toFixed(1)} s`;
      }
      case 'api-sigstop': {
        apis[fault.instance].signal('SIGSTOP');
        await sleep(fault.ms);
        apis[fault.instance].signal('SIGCONT');
        return `instance ${fault.instance} SIGSTOP for ${fault.ms / 1000} s (hold TTL ${HOLD_TTL_SECONDS} s), SIGCONT`;
      }
      case 'gateway-slow': {
        this.slowShare = 0.5;
        gateway.signal('SIGSTOP');
        await sleep(fault.sigstopMs);
        gateway.signal('SIGCONT');
        await sleep(Math.max(0, fault.ms - fault.sigstopMs));
        this.slowShare = 0;
        return `gateway SIGSTOP for ${fault.sigstopMs / 1000} s, and for ${fault.ms / 1000} s half the payments use pm_card_slow (${GATEWAY_SLOW_MS / 1000} s each)`;
      }
    }
  }
}
