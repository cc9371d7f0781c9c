import * as http from '../../support/bench/bench-http';
import { storedRows } from '../../support/bench/bench-state';
import { fmt } from '../../support/bench/report';
import { mapLimit, round } from '../../support/bench/stats';
import type { Shot } from '../../support/bench/wave';
import type { RedisServer } from '../../support/redis-server';
import {
  type Options,
  quantity,
  run,
  type Scenario,
  SCENARIO_TITLES,
  seededRandom,
} from './flash-options';
import { createGaEvent, waitRedisSeen } from './flash-stack';
import { type Ask, runWave, type WaveContext, type WaveFault } from './flash-wave';

/* A scenario: wave 1 (with its fault), half of its holds released by their owners, wave 2. */

type Flush = { afterAnswers: number; atMs: number; done: Promise<string> };

/**
 * The fault of wave 1: FLUSHALL once `flushAfter` answers came back, or Redis stopped before it.
 * `flushed()` answers what the FLUSHALL did (null: none was sent).
 */
function waveOneFault(scenario: Scenario, options: Options, redis: RedisServer, api: string) {
  let flush: Flush | null = null;
  const fault: WaveFault = {};
  if (scenario === 'flush') {
    fault.onAnswer = (answered, elapsedMs) => {
      if (answered !== options.flushAfter || flush) return;
      const done = redis.flushAll().then(
        () => 'ok',
        (error: Error) => `failed: ${error.message}`,
      );
      flush = { afterAnswers: answered, atMs: round(elapsedMs) ?? 0, done };
    };
  }
  if (scenario === 'stopped') {
    fault.redisDown = true;
    fault.before = async () => {
      run.log(`[${scenario}] stopping Redis`);
      await redis.kill();
      await waitRedisSeen(api, false);
    };
  }
  const flushed = async () => {
    // Assigned in a callback: the compiler cannot see it.
    const sent = flush as Flush | null;
    return sent && { afterAnswers: sent.afterAnswers, atMs: sent.atMs, result: await sent.done };
  };
  return { fault, flushed };
}

/** Every second 201 of wave 1 (in customer order) released by its owner: DELETE /bookings/{id}. */
async function releaseHalf(ctx: WaveContext, api: string, held: Shot<Ask>[], scenario: Scenario) {
  const toRelease = held.filter((_, i) => i % 2 === 1);
  run.log(`[${scenario}] releasing ${fmt(toRelease.length)} of ${fmt(held.length)} holds`);
  const released = await mapLimit(toRelease, 16, async (shot) => {
    const booking = JSON.parse(shot.text) as { id: string };
    const answer = await http.call<{ status: string; seats: string[] }>(
      api,
      'DELETE',
      `/bookings/${booking.id}`,
      { token: ctx.tokens[shot.customer] },
    );
    const done = answer.status === 200 && answer.body?.status === 'released';
    return { units: done ? answer.body.seats.length : 0, text: answer.text.slice(0, 300) };
  });
  const failures = released.filter((r) => r.units === 0);
  const rowsAfter = await storedRows(ctx.benchUrl, ctx.eventId);
  return {
    bookings: toRelease.length,
    units: released.reduce((sum, r) => sum + r.units, 0),
    failures: failures.length,
    firstFailure: failures[0]?.text ?? null,
    freeAtWave2: rowsAfter.seats.filter((u) => u.status === 'free').length,
    rowsAfter,
  };
}

/** One scenario on an event of its own; answers the raw measurements. */
export async function runScenario(
  scenario: Scenario,
  options: Options,
  base: Omit<WaveContext, 'eventId'>,
  redis: RedisServer,
) {
  const api = await base.holder.alive();
  run.log(`[${scenario}] ${SCENARIO_TITLES[scenario]}: event of ${fmt(options.capacity)} GA units`);
  const eventId = await createGaEvent(api.url, `Flash ${scenario}`, options.capacity);
  const ctx: WaveContext = { ...base, eventId };
  const random = seededRandom(options.seed);
  const wave1Asks = Array.from({ length: options.customers }, (_, customer) => ({
    customer,
    quantity: quantity(random),
  }));
  const { fault, flushed } = waveOneFault(scenario, options, redis, api.url);
  const wave1 = await runWave(ctx, `[${scenario}] wave 1`, wave1Asks, fault);
  const flush = await flushed();
  if (scenario === 'stopped') {
    run.log(`[${scenario}] starting Redis again`);
    await redis.restart();
  }
  // The releases and wave 2 on the API that survived wave 1, or on a new one.
  const after = await base.holder.alive();
  if (scenario === 'stopped') await waitRedisSeen(after.url, true);
  const held = wave1.wave.shots
    .filter((shot) => shot.status === '201')
    .sort((a, b) => a.customer - b.customer);
  const release = await releaseHalf(ctx, after.url, held, scenario);
  // Wave 2: customers who hold nothing of this event, in order.
  const booked = new Set(held.map((shot) => shot.customer));
  const wave2Asks = base.tokens
    .map((_, customer) => customer)
    .filter((customer) => !booked.has(customer))
    .slice(0, options.wave2)
    .map((customer) => ({ customer, quantity: quantity(random) }));
  const wave2 =
    wave2Asks.length > 0 ? await runWave(ctx, `[${scenario}] wave 2`, wave2Asks, {}) : null;
  return { scenario, eventId, wave1, flush, release, wave2 };
}
export type ScenarioRaw = Awaited<ReturnType<typeof runScenario>>;
