import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import * as http from '../../support/bench/bench-http';
import type { ApiOptions } from '../../support/bench/bench-run';
import type { Child } from '../../support/bench/child-processes';
import { BenchError } from '../../support/bench/cli';
import { memoryStatus } from '../../support/bench/proc-stats';
import { round } from '../../support/bench/stats';
import { PRICE_CENTS, run, SECTION } from './flash-options';

/* The flash sale's API (started again when a wave kills it), its GA events, what Redis counts. */

export type ApiCrash = { code: number | null; signal: string | null; fatal: string | null };

/** The run's API, started again after a crash (so the next scenario still runs). */
export class ApiHolder {
  readonly crashes: ApiCrash[] = [];
  private peakMiB: number | null = null;

  private constructor(
    public api: Child,
    private readonly options: ApiOptions,
  ) {}

  static async start(options: ApiOptions): Promise<ApiHolder> {
    return new ApiHolder(await run.startApi(options), options);
  }

  /** Whether the API died (its exit awaited up to `waitMs`); the crash noted. */
  async crashed(waitMs: number): Promise<ApiCrash | null> {
    const api = this.api;
    const gone = await Promise.race([api.exited.then(() => true), sleep(waitMs).then(() => false)]);
    if (!gone) return null;
    const fatal = api.tail.find((line) => /FATAL ERROR|out of memory|Error:/i.test(line)) ?? null;
    const crash = { code: api.child.exitCode, signal: api.child.signalCode, fatal };
    this.crashes.push(crash);
    run.log(
      `the API died (code ${crash.code}, signal ${crash.signal}): ${fatal ?? api.tail.at(-1)}`,
    );
    return crash;
  }

  async alive(): Promise<Child> {
    if (this.api.hasExited) {
      run.log('starting the API again');
      this.api = await run.startApi(this.options);
    }
    return this.api;
  }

  notePeak(): void {
    const peak = memoryStatus(this.api.pid)?.peak ?? null;
    if (peak !== null) this.peakMiB = Math.max(this.peakMiB ?? 0, peak);
  }

  /** MiB (what /proc reports) to MB, the suite's unit. */
  get peakRssMB(): number | null {
    return this.peakMiB === null ? null : round(this.peakMiB * 1.048576, 1);
  }
}

/** Until /health/ready reports Redis up (or not up): the API saw the change. */
export async function waitRedisSeen(api: string, up: boolean): Promise<void> {
  const deadline = Date.now() + 20_000;
  let last = '';
  while (Date.now() < deadline) {
    const answer = await http
      .call(api, 'GET', '/health/ready', { timeoutMs: 2_000 })
      .catch(() => null);
    const status = answer?.body?.details?.redis?.status ?? answer?.body?.info?.redis?.status;
    last = answer ? `${answer.status} ${answer.text.slice(0, 200)}` : 'no answer';
    if (answer?.status === 200 && (status === 'up') === up) return;
    await sleep(100);
  }
  throw new BenchError(`the API did not see Redis ${up ? 'up' : 'down'} (last: ${last})`);
}

/** An event of one GA section, checked on GET /events/{id}; its seat map then cached. */
export async function createGaEvent(api: string, name: string, capacity: number) {
  const body = {
    name: `${name} ${new Date().toISOString()}`,
    startsAt: '2027-06-01T19:30:00Z',
    venue: 'Bench Arena',
    currency: 'EUR',
    sections: [{ name: SECTION, capacity, priceCents: PRICE_CENTS }],
  };
  const { id } = http.expectStatus(
    await http.call<{ id: string }>(api, 'POST', '/admin/events', { token: run.adminToken, body }),
    201,
    'POST /admin/events',
  );
  type Section = { name: string; kind: string; capacity: number; available: number };
  const shown = http.expectStatus(
    await http.call<{ sections: Section[] }>(api, 'GET', `/events/${id}`),
    200,
    'GET /events/{id}',
  );
  const section = shown.sections?.find((s) => s.name === SECTION);
  if (section?.kind !== 'ga' || section.capacity !== capacity || section.available !== capacity) {
    throw new BenchError(`GET /events/{id}: section ${JSON.stringify(section)}`);
  }
  http.expectStatus(await http.call(api, 'GET', `/events/${id}/seats`), 200, 'GET seats');
  return id;
}

/** The event's admission counter in Redis (ga:{event:…}:<section>), value and TTL; null if none. */
export async function admissionCount(url: string, eventId: string) {
  const client = new Redis(url, { maxRetriesPerRequest: 0, lazyConnect: true });
  client.on('error', () => undefined);
  try {
    await client.connect();
    const [key] = await client.keys(`*ga:{event:${eventId}}*`);
    if (!key) return null;
    const [value, pttlMs] = await Promise.all([client.get(key), client.pttl(key)]);
    return { key, value: value === null ? null : Number(value), pttlMs };
  } finally {
    client.disconnect();
  }
}

export const STATEMENT_KINDS = ['hold', 'seed', 'outbox', 'other'] as const;

/** Statements by kind (the GA hold, the admission count's seed, the outbox's fan-out, other),
 * and the five most frequent texts of the others. */
export function statementsByKind(sqls: readonly string[]) {
  const kinds = { hold: 0, seed: 0, outbox: 0, other: 0 };
  const others = new Map<string, number>();
  for (const sql of sqls) {
    if (sql.includes('seatlock_hold_units')) kinds.hold += 1;
    else if (sql.includes('seatlock_units_available')) kinds.seed += 1;
    else if (/outbox|notification|webhook_deliver/i.test(sql)) kinds.outbox += 1;
    else {
      kinds.other += 1;
      const text = sql.replace(/\s+/g, ' ').slice(0, 120);
      others.set(text, (others.get(text) ?? 0) + 1);
    }
  }
  const otherTexts = Object.fromEntries([...others].sort((a, b) => b[1] - a[1]).slice(0, 5));
  return { kinds, otherTexts };
}
