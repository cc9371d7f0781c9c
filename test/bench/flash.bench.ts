/*
 * Flash sale (issue 13): N customers ask at once for 1–4 units of one GA section `Floor`.
 * Options: npm run bench:flash -- --help. See docs/benchmarks.md.
 *
 * On a fresh database (seatlock_bench_flash, behind a PgCountingProxy) and a redis-server of its
 * own (the variants flush and stop it), per scenario (Redis up, FLUSHALL mid-wave, Redis stopped):
 * wave 1, every customer at once; half of its holds released by their owners; wave 2, customers
 * without a booking. Ceilings of the same run: /health/live, then (API stopped) pgbench of the
 * minimal unit claim and raw DECRBY. Exit 1 on a unit sold twice, an oversell, a 5xx (but 503
 * OVERLOADED with Redis stopped), a lost request or the API dying; the rest is reported.
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
import { report, summarize } from './flash/flash-report';
import { runScenario } from './flash/flash-scenario';
import { ApiHolder, createGaEvent } from './flash/flash-stack';

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
  const start = loadAverage();
  const result = summarize(options, await measure(options));
  // Before the report: the database dropped, Redis stopped.
  await withTimeout(run.stopAll(), 30_000, 'cleaning up').catch((error: Error) =>
    run.log(error.message),
  );
  const { sections, json } = report(options, result, { start, end: loadAverage() });
  printReport(sections, json);
  return result.ok ? 0 : 1;
}

run.main(main, 40 * 60_000);
