/*
 * Best available under a stampede (issue 12): N customers ask for the best two seats at once, on
 * one event of 1,000 seats under orphanPolicy "strict", the API behind a PgCountingProxy with a
 * redis-server of its own unless REDIS_URL is set. Unless --cold, the caches, one hold elsewhere
 * and every connection are warmed first. Ceilings, the API stopped: pgbench of the one-statement
 * hold and of our own seatlock_hold call. A seat twice, a booking apart, a 5xx or a lost request
 * is exit 1; stranded seats and refusals while pairs were left are noted (docs/on-sale.md).
 * Uses DATABASE_URL's server, only the database seatlock_bench_best. See docs/benchmarks.md.
 */
import { randomBytes } from 'node:crypto';
import type { PgCountingProxy } from '../support/pg-counting-proxy';
import * as http from '../support/bench/bench-http';
import { findPgbench } from '../support/bench/bench-postgres';
import { BenchRun, HOUR_MS } from '../support/bench/bench-run';
import * as state from '../support/bench/bench-state';
import type { Child } from '../support/bench/child-processes';
import * as cli from '../support/bench/cli';
import { memoryStatus } from '../support/bench/proc-stats';
import { round, subtract } from '../support/bench/stats';
import { fireWave, waveAgent } from '../support/bench/wave';
import { printBestReport, QUANTITY, ROWS, SEATS_PER_ROW, summarize } from './best-available-report';
import { type CeilingRun, holdCeilings } from './holds-windows';

const PRICE_CENTS = 5_000;
const BURST_TIMEOUT_MS = 120_000;
const HOLD_OUTCOMES = ['held', 'conflict_redis', 'conflict_database', 'rejected'] as const;
const bench = new BenchRun('best-available');

const USAGE = `Usage: npm run bench:best -- [--contenders N] [--cold] [--pgbench-seconds S]
                          [--no-pgbench] [--json]

  --contenders N       concurrent POST /bookings {quantity: ${QUANTITY}} (1 to 10000, default 1000)
  --cold               skip the warm-up (caches, one hold elsewhere, pre-opened connections)
  --pgbench-seconds S  seconds of each pgbench ceiling run (default 10; four runs)
  --no-pgbench         skip the pgbench ceilings
  --json               also print one JSON object as the last line of stdout`;

function readOptions() {
  const [text, flag] = [{ type: 'string' }, { type: 'boolean' }] as const;
  const values = cli.parseBenchArgs(
    { contenders: text, cold: flag, 'pgbench-seconds': text, 'no-pgbench': flag, json: flag },
    USAGE,
  );
  return {
    contenders: Math.floor(cli.numberOption('contenders', values.contenders, 1000, 1, 10_000)),
    warm: values.cold !== true,
    pgbenchSeconds: cli.numberOption('pgbench-seconds', values['pgbench-seconds'], 10, 1, 600),
    pgbench: values['no-pgbench'] !== true,
    json: values.json === true,
  };
}
type Options = ReturnType<typeof readOptions>;

/** One section of `rows` x `seatsPerRow` under the strict orphan policy, checked on GET /events. */
async function createStrictEvent(api: string, name: string, rows: number, seatsPerRow: number) {
  const body = {
    ...{ name: `${name} ${new Date().toISOString()}`, startsAt: '2027-06-01T19:30:00Z' },
    ...{ venue: 'Bench Arena', currency: 'EUR', orphanPolicy: 'strict' },
    sections: [{ name: 'Floor', rows, seatsPerRow, priceCents: PRICE_CENTS }],
  };
  const token = bench.adminToken;
  const answer = await http.call<{ id: string; seats?: unknown[] }>(api, 'POST', '/admin/events', {
    token,
    body,
  });
  const created = http.expectStatus(answer, 201, 'POST /admin/events');
  if (created.seats?.length !== rows * seatsPerRow) {
    throw new cli.BenchError(`POST /admin/events answered ${created.seats?.length} seats`);
  }
  const shown = await http.call<{ orphanPolicy?: string }>(api, 'GET', `/events/${created.id}`);
  const policy = http.expectStatus(shown, 200, 'GET /events/{id}').orphanPolicy;
  if (policy !== 'strict') throw new cli.BenchError(`the event's orphanPolicy is ${policy}`);
  return { id: created.id, labels: [] };
}

/** One hold elsewhere: the lock scripts then in Redis's script cache, as in a running sale. */
async function warmHold(api: string): Promise<void> {
  const event = await createStrictEvent(api, 'Warm-up', 1, 6);
  const [customer] = await http.registerCustomers(api, 1, `warm-${randomBytes(4).toString('hex')}`);
  const body = { eventId: event.id, quantity: QUANTITY };
  const answer = await http.call(api, 'POST', '/bookings', { token: customer.token, body });
  http.expectStatus(answer, 201, 'the warm-up hold');
}

type WaveSetting = { benchUrl: string; redisUrl: string; proxy: PgCountingProxy };

/** The event, the customers, the warm-up; then the wave with every counter around it. */
async function wave(api: Child, o: Options, { benchUrl, redisUrl, proxy }: WaveSetting) {
  const event = await createStrictEvent(api.url, 'Best available', ROWS, SEATS_PER_ROW);
  bench.log(`registering ${o.contenders} customers${o.warm ? ', warming caches' : ''}`);
  const tag = randomBytes(4).toString('hex');
  const customers = await http.registerCustomers(api.url, o.contenders, tag);
  if (o.warm) {
    await http.warmCaches(api.url, customers, [event]);
    await warmHold(api.url);
  }
  const timeoutMs = BURST_TIMEOUT_MS;
  const agent = await waveAgent(api.url, o.contenders, { open: o.warm, timeoutMs });
  try {
    const pendingBefore = await state.drainOutbox(benchUrl);
    const metricsBefore = await state.holdMetrics(api.url, HOLD_OUTCOMES);
    const [logBefore, redisBefore] = [api.snapshot(), await state.commandStats(redisUrl)];
    const wireBefore = proxy.counts();
    bench.log(`wave: ${o.contenders} x POST /bookings {quantity: ${QUANTITY}}`);
    const body = { eventId: event.id, quantity: QUANTITY };
    const requests = customers.map(({ token }) => ({ token, body }));
    const fired = await fireWave({ api: api.url, agent, requests, timeoutMs });
    const wireWave = subtract(proxy.counts(), wireBefore);
    const redis = state.commandDelta(await state.commandStats(redisUrl), redisBefore);
    const pending = await state.drainOutbox(benchUrl);
    const peak = memoryStatus(api.pid)?.peak ?? null;
    return {
      wave: fired,
      wire: { wave: wireWave, drained: subtract(proxy.counts(), wireBefore) },
      ...{ redis, pendingBefore, pending },
      metrics: subtract(await state.holdMetrics(api.url, HOLD_OUTCOMES), metricsBefore),
      // MiB (what /proc reports) to MB, the suite's unit.
      peakRssMB: peak === null ? null : round(peak * 1.048576, 1),
      apiLog: api.logSince(logBefore),
      rows: await state.storedRows(benchUrl, event.id),
    };
  } finally {
    // Our connections first: a graceful shutdown would otherwise wait for them.
    await agent.destroy().catch(() => undefined);
  }
}

/** pgbench of a hold (the suite's runs), the API stopped; a failure or no pgbench is noted. */
async function ceilings(o: Options, databaseUrl: string) {
  const none = (skipped: string) => ({ runs: [] as CeilingRun[], skipped });
  if (!o.pgbench) return none('--no-pgbench');
  if (!findPgbench()) return none('no pgbench on this machine');
  try {
    const options = { connections: 64, seconds: o.pgbenchSeconds, databaseUrl };
    return { runs: await holdCeilings(bench, options), skipped: null };
  } catch (error) {
    return none(`pgbench failed: ${(error as Error).message.split('\n')[0]}`);
  }
}

/** From a fresh database to the API stopped and the ceilings run; answers the raw measurements. */
async function measure(o: Options) {
  const benchUrl = await bench.freshDatabase('seatlock_bench_best');
  const redis = await bench.redis();
  const proxy = await bench.countingProxy(benchUrl);
  // The outbox's safety-net polls would count as wave traffic; NOTIFY still wakes it.
  const api = {
    database: proxy.urlFor(benchUrl),
    redis: redis.url,
    env: { NOTIFY_POLL_MS: HOUR_MS },
  };
  const setting = { benchUrl, redisUrl: redis.url, proxy };
  const waved = await bench.withApi(api, (child) => wave(child, o, setting));
  const ceiling = await ceilings(o, benchUrl);
  return { ...waved, redisPrivate: redis.server !== null, ceiling };
}
export type Measured = Awaited<ReturnType<typeof measure>>;

async function main(): Promise<number> {
  const options = readOptions();
  const result = summarize(options, await measure(options));
  await bench.stopAll();
  printBestReport(options, result);
  return result.ok ? 0 : 1;
}

bench.main(main, 15 * 60_000);
