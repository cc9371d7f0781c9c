import * as http from '../../support/bench/bench-http';
import * as state from '../../support/bench/bench-state';
import { fmt } from '../../support/bench/report';
import { mapLimit, round, subtract } from '../../support/bench/stats';
import { fireWave, type Shot, waveAgent } from '../../support/bench/wave';
import type { PgCountingProxy } from '../../support/pg-counting-proxy';
import type { RedisServer } from '../../support/redis-server';
import {
  loadAverage,
  type Options,
  run,
  type Scenario,
  SCENARIO_TITLES,
  SECTION,
  seededQuantities,
  WAVE_TIMEOUT_MS,
} from './flash-options';
import {
  admissionCount,
  type ApiHolder,
  createGaEvent,
  statementsByKind,
  waitRedisSeen,
} from './flash-stack';

/* A scenario: wave 1 (with its fault), half of its holds released by their owners, wave 2. */

export type Base = {
  holder: ApiHolder;
  proxy: PgCountingProxy;
  benchUrl: string;
  redisUrl: string;
  tokens: readonly string[];
};
type Ctx = Base & { eventId: string };
type Ask = { customer: number; quantity: number };
/** Around wave 1: `before` stops Redis (its counters are then not read), or FLUSHALL on answers. */
type Fault = {
  before?: () => Promise<void>;
  onAnswer?: (answered: number, elapsedMs: number) => void;
};

const HOLD_OUTCOMES = ['held', 'sold_out_redis', 'sold_out_seeded', 'sold_out_database'] as const;

/** One wave of `asks` (tokens warm, connections open); then the outbox drained, the rows read. */
async function runWave(ctx: Ctx, name: string, asks: Ask[], fault: Fault) {
  const api = await ctx.holder.alive();
  const n = fmt(asks.length);
  run.log(`${name}: warming ${n} tokens, opening ${n} connections`);
  const tokens = asks.map(({ customer }) => ({ id: '', token: ctx.tokens[customer] }));
  await http.warmCaches(api.url, tokens, []);
  const agent = await waveAgent(api.url, asks.length, { timeoutMs: WAVE_TIMEOUT_MS });
  try {
    const pendingBefore = await state.drainOutbox(ctx.benchUrl);
    await fault.before?.();
    const redisUp = !fault.before;
    const counterBefore = redisUp ? await admissionCount(ctx.redisUrl, ctx.eventId) : null;
    const metricsBefore = await state.holdMetrics(api.url, HOLD_OUTCOMES, true);
    const logBefore = api.snapshot();
    const redisBefore = redisUp ? await state.commandStats(ctx.redisUrl) : null;
    const loadAverageBefore = loadAverage();
    const wireBefore = ctx.proxy.counts();
    const logFrom = ctx.proxy.statementLog().length;
    run.log(`${name}: ${n} x POST /bookings {section: '${SECTION}', quantity: 1-4}`);
    const requests = asks.map((ask) => ({
      ...ask,
      token: ctx.tokens[ask.customer],
      body: { eventId: ctx.eventId, section: SECTION, quantity: ask.quantity },
    }));
    const { onAnswer } = fault;
    const wave = await fireWave({
      api: api.url,
      agent,
      requests,
      onAnswer,
      timeoutMs: WAVE_TIMEOUT_MS,
    });
    const wire = subtract(ctx.proxy.counts(), wireBefore);
    const statements = statementsByKind(ctx.proxy.statementLog(logFrom));
    const redisAfter = redisBefore ? await state.commandStats(ctx.redisUrl) : null;
    const counter = redisBefore ? await admissionCount(ctx.redisUrl, ctx.eventId) : null;
    // An answer that never came may be the API gone: then no /metrics and no fan-out to wait for.
    const unanswered = wave.shots.some((shot) => shot.status.startsWith('error'));
    const crash = await ctx.holder.crashed(unanswered ? 3_000 : 0);
    if (!crash) ctx.holder.notePeak();
    const pending = crash ? null : await state.drainOutbox(ctx.benchUrl);
    const wireDrained = subtract(ctx.proxy.counts(), wireBefore);
    const metricsAfter = crash ? null : await state.holdMetrics(api.url, HOLD_OUTCOMES, true);
    return {
      wave,
      wire,
      statements,
      pendingBefore,
      crash,
      counterBefore,
      counter,
      wireDrained,
      redis: redisBefore && redisAfter ? state.commandDelta(redisAfter, redisBefore) : null,
      metrics: metricsAfter && subtract(metricsAfter, metricsBefore),
      pending,
      loadAverageBefore,
      apiLog: api.logSince(logBefore),
      rows: await state.storedRows(ctx.benchUrl, ctx.eventId),
    };
  } finally {
    await agent.destroy().catch(() => undefined);
  }
}
export type WaveRaw = Awaited<ReturnType<typeof runWave>>;

/** Every second 201 of wave 1 (in customer order) released by its owner: DELETE /bookings/{id}. */
async function releaseHalf(ctx: Ctx, api: string, held: Shot<Ask>[], scenario: Scenario) {
  const toRelease = held.filter((_, i) => i % 2 === 1);
  run.log(`[${scenario}] releasing ${fmt(toRelease.length)} of ${fmt(held.length)} holds`);
  const released = await mapLimit(toRelease, 16, async (shot) => {
    const { id } = JSON.parse(shot.text) as { id: string };
    const token = ctx.tokens[shot.customer];
    const answer = await http.call(api, 'DELETE', `/bookings/${id}`, { token });
    const done = answer.status === 200 && answer.body?.status === 'released';
    return { units: done ? (answer.body.seats as string[]).length : 0, text: answer.text };
  });
  const failures = released.filter((r) => r.units === 0);
  const rowsAfter = await state.storedRows(ctx.benchUrl, ctx.eventId);
  return {
    bookings: toRelease.length,
    units: released.reduce((sum, r) => sum + r.units, 0),
    failures: failures.length,
    firstFailure: failures[0]?.text.slice(0, 300) ?? null,
    freeAtWave2: rowsAfter.seats.filter((u) => u.status === 'free').length,
    rowsAfter,
  };
}

/** One scenario on an event of its own; answers the raw measurements. */
export async function runScenario(
  scenario: Scenario,
  options: Options,
  base: Base,
  redis: RedisServer,
) {
  const api = await base.holder.alive();
  run.log(`[${scenario}] ${SCENARIO_TITLES[scenario]}: event of ${fmt(options.capacity)} GA units`);
  const ctx = {
    ...base,
    eventId: await createGaEvent(api.url, `Flash ${scenario}`, options.capacity),
  };
  const quantity = seededQuantities(options.seed);
  const wave1Asks = Array.from({ length: options.customers }, (_, customer) => ({
    customer,
    quantity: quantity(),
  }));
  // --flush-mid-wave: FLUSHALL once `flushAfter` answers came back.
  const sent = { afterAnswers: 0, atMs: 0, done: null as Promise<string> | null };
  const onAnswer = (answered: number, elapsedMs: number) => {
    if (answered !== options.flushAfter || sent.done) return;
    Object.assign(sent, { afterAnswers: answered, atMs: round(elapsedMs) ?? 0 });
    sent.done = redis.flushAll().then(
      () => 'ok',
      (error: Error) => `failed: ${error.message}`,
    );
  };
  // --redis-stopped: Redis killed once the wave is ready, before the counters are read.
  const stopRedis = async () => {
    run.log(`[${scenario}] stopping Redis`);
    await redis.kill();
    await waitRedisSeen(api.url, false);
  };
  const fault: Fault =
    scenario === 'flush' ? { onAnswer } : scenario === 'stopped' ? { before: stopRedis } : {};
  const wave1 = await runWave(ctx, `[${scenario}] wave 1`, wave1Asks, fault);
  const { afterAnswers, atMs, done } = sent;
  const flush = done && { afterAnswers, atMs, result: await done };
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
    .map((customer) => ({ customer, quantity: quantity() }));
  const wave2 =
    wave2Asks.length > 0 ? await runWave(ctx, `[${scenario}] wave 2`, wave2Asks, {}) : null;
  return { scenario, eventId: ctx.eventId, wave1, flush, release, wave2 };
}
export type ScenarioRaw = Awaited<ReturnType<typeof runScenario>>;
