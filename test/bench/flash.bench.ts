/*
 * Flash sale (issue 13): N customers ask at once for 1–4 units of one general-admission section.
 *
 *   npm run bench:flash -- [--flush-mid-wave] [--redis-stopped] [--all] [--customers 10000]
 *                          [--capacity 1000] [--wave2 5000] [--seed 13] [--flush-after 300]
 *                          [--pgbench-seconds 10] [--no-pgbench] [--live-seconds 5] [--json]
 *
 * Starts the built API (npm start's node options, rate limits off) on a fresh database of its own,
 * behind a PgCountingProxy, with a redis-server of its own (never a shared one: the variants flush
 * and stop it, and INFO commandstats then counts this API alone). Registers the customers (not
 * measured), holds one unit of a warm-up event (the admission script cached in Redis), then per
 * scenario, on an event of its own with one GA section `Floor` of `capacity` units:
 *
 *   wave 1  every customer, tokens warm and connections open, sends POST /bookings {eventId,
 *           section: 'Floor', quantity: q} at once, q uniformly 1–4 from the seed;
 *   release half of the wave-1 holds are released by their owners (DELETE /bookings/{id});
 *   wave 2  `wave2` customers without a booking ask again (1–4 each) at once: they must take the
 *           units that are free again, or as many as fit.
 *
 * Scenarios: `normal` (default); `--flush-mid-wave`: FLUSHALL on the private Redis once
 * `flush-after` answers of wave 1 came back; `--redis-stopped`: Redis killed before wave 1
 * (PostgreSQL alone behind the fallback bulkhead, which may answer 503 BOOKING.OVERLOADED), started
 * again before the releases; `--all`: the three. Per wave: units sold (201s, the seats and bookings
 * tables), units twice, refusals by status and code, losers answered without a PostgreSQL
 * statement (a lower bound from the wire: every statement but the winners' holds and the outbox's
 * fan-out charged to a loser; the API's seatlock_holds_total sold_out_redis beside it), time to
 * sell out, p50/p99, statements per unit sold, Redis commands. Ceilings, measured in the same run,
 * the physical limit of the work: the API's own GET /health/live (autocannon, before the API stops); with the API stopped, pgbench of the minimal
 * statement that claims free units (one UPDATE of the first free unit rows FOR UPDATE SKIP LOCKED,
 * one unit, and 1–4 units, per transaction) on the same database, and raw DECRBY on the same
 * redis-server (redis-benchmark).
 *
 * Statements on the wire are also told apart by their text (the hold, the admission count's seed,
 * the outbox, other), and the admission count in Redis is read before and after each wave.
 *
 * Exit 1 on: a unit sold twice, more units sold than the section has, a 5xx (other than 503
 * BOOKING.OVERLOADED while Redis is stopped), a lost request, the API dying in a wave (it is then
 * started again, so that what follows still runs). Wave 1 selling fewer than all units, wave 2
 * selling fewer than fit, and losers reaching PostgreSQL are reported, not failed.
 * Uses DATABASE_URL's server, only the database seatlock_bench_flash. See docs/benchmarks.md.
 */
import { randomBytes } from 'node:crypto';
import * as http from '../support/bench/bench-http';
import { HOUR_MS } from '../support/bench/bench-run';
import { withTimeout } from '../support/bench/cli';
import { fmt, printReport } from '../support/bench/report';
import { round } from '../support/bench/stats';
import type { RedisServer } from '../support/redis-server';
import { claimCeilings, liveCeiling, redisCeiling } from './flash/flash-ceilings';
import {
  DATABASE,
  HOLD_TTL_SECONDS,
  loadAverage,
  type Options,
  readOptions,
  run,
  SECTION,
} from './flash/flash-options';
import { reportSections } from './flash/flash-report';
import { runScenario } from './flash/flash-scenario';
import { ApiHolder, createGaEvent } from './flash/flash-stack';
import { summarize } from './flash/flash-summary';

/** Customers registered (not measured), and one unit held on a warm-up event. */
async function prepare(api: string, options: Options) {
  const registering = performance.now();
  run.log(`registering ${fmt(options.customers)} customers (not measured)`);
  const tag = randomBytes(4).toString('hex');
  const customers = await http.registerCustomers(api, options.customers, tag);
  const registrationMs = round(performance.now() - registering);
  // One unit of a warm-up event: the admission script in Redis's cache, the GA path warm.
  const warmEvent = await createGaEvent(api, 'Warm-up', 10);
  const [warmCustomer] = await http.registerCustomers(api, 1, `${tag}-warm`);
  const body = { eventId: warmEvent, section: SECTION, quantity: 1 };
  http.expectStatus(
    await http.call(api, 'POST', '/bookings', { token: warmCustomer.token, body }),
    201,
    'the warm-up hold',
  );
  return { tokens: customers.map((c) => c.token), registrationMs };
}

/** The scenarios on the API, then the ceilings with the API stopped. */
export async function measure(options: Options) {
  const benchUrl = await run.freshDatabase(DATABASE);
  // Never a shared Redis: the variants flush and stop it, and INFO commandstats counts this API alone.
  const redis: RedisServer = await run.privateRedis();
  // The statements' text too: what a wave's statements were (hold, seed, fan-out, other).
  const proxy = await run.countingProxy(benchUrl, true);
  const holder = await ApiHolder.start({
    database: proxy.urlFor(benchUrl),
    redis: redis.url,
    // The outbox's safety-net polls would count as wave traffic; NOTIFY still wakes it.
    env: { HOLD_TTL_SECONDS: String(HOLD_TTL_SECONDS), NOTIFY_POLL_MS: HOUR_MS },
  });
  try {
    const { tokens, registrationMs } = await prepare(holder.api.url, options);
    const base = { holder, proxy, benchUrl, redisUrl: redis.url, tokens };
    const scenarios = [];
    for (const scenario of options.scenarios) {
      scenarios.push(await runScenario(scenario, options, base, redis));
    }
    const last = await holder.alive();
    const live = await liveCeiling(last.url, options.liveSeconds);
    holder.notePeak();
    await run.children.stop(last);
    return {
      registrationMs,
      scenarios,
      live,
      peakRssMB: holder.peakRssMB,
      apiCrashes: holder.crashes,
      unitClaims: await claimCeilings(options, benchUrl),
      redisCeiling: await redisCeiling(redis.url),
    };
  } catch (error) {
    if (holder.api.tail.length) run.log(`last API output:\n${holder.api.tail.join('\n')}`);
    throw error;
  }
}

async function main(): Promise<number> {
  const options = readOptions();
  const loadAtStart = loadAverage();
  const result = summarize(options, await measure(options));
  // Before the report: the database dropped, Redis stopped.
  await withTimeout(run.stopAll(), 30_000, 'cleaning up').catch((error: Error) =>
    run.log(error.message),
  );
  const loadAtEnd = loadAverage();
  const byScenario = <T>(pick: (s: (typeof result.scenarios)[number]) => T) =>
    Object.fromEntries(result.scenarios.map((s) => [s.summary.scenario, pick(s)]));
  const loadLine =
    `load average (1, 5, 15 min): ${loadAtStart?.join(' ') ?? '-'} at the start, ` +
    `${loadAtEnd?.join(' ') ?? '-'} at the end`;
  printReport(
    [...reportSections(options, result), { lines: [loadLine] }],
    options.json
      ? {
          benchmark: 'flash',
          ok: result.ok,
          scenarios: options.scenarios,
          customers: options.customers,
          capacity: options.capacity,
          wave2: options.wave2,
          seed: options.seed,
          section: SECTION,
          summary: byScenario((s) => s.summary),
          ceilings: result.ceilings,
          peakRssMB: result.peakRssMB,
          apiCrashes: result.apiCrashes,
          registrationMs: result.registrationMs,
          loadAverage: { start: loadAtStart, end: loadAtEnd },
          details: byScenario((s) => s.details),
          failures: byScenario((s) => s.failures),
          anomalies: { ...byScenario((s) => s.anomalies), ceilings: result.notes },
        }
      : undefined,
  );
  return result.ok ? 0 : 1;
}

run.main(main, 40 * 60_000);
