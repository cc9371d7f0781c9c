import * as http from '../../support/bench/bench-http';
import {
  commandDelta,
  commandStats,
  drainOutbox,
  holdMetrics,
  storedRows,
} from '../../support/bench/bench-state';
import type { Child } from '../../support/bench/child-processes';
import { fmt } from '../../support/bench/report';
import { subtract } from '../../support/bench/stats';
import { fireWave, waveAgent, type WaveResult } from '../../support/bench/wave';
import type { PgCountingProxy } from '../../support/pg-counting-proxy';
import { loadAverage, run, SECTION, WAVE_TIMEOUT_MS } from './flash-options';
import { admissionCount, type ApiHolder, statementsByKind } from './flash-stack';

/* One wave: from warm tokens and open connections to the outbox fanned out and the rows read. */

export type WaveContext = {
  holder: ApiHolder;
  proxy: PgCountingProxy;
  benchUrl: string;
  redisUrl: string;
  eventId: string;
  tokens: readonly string[];
};

export type Ask = { customer: number; quantity: number };

export type WaveFault = {
  before?: () => Promise<void>;
  onAnswer?: (answered: number, elapsedMs: number) => void;
  redisDown?: boolean;
};

const HOLD_OUTCOMES = ['held', 'sold_out_redis', 'sold_out_seeded', 'sold_out_database'] as const;

/** The counters read just before the wave (Redis's only while it runs). */
async function countersBefore(ctx: WaveContext, api: Child, redisDown: boolean) {
  return {
    counter: redisDown ? null : await admissionCount(ctx.redisUrl, ctx.eventId),
    metrics: await holdMetrics(api.url, HOLD_OUTCOMES, true),
    log: api.snapshot(),
    redis: redisDown ? null : await commandStats(ctx.redisUrl),
    load: loadAverage(),
    wire: ctx.proxy.counts(),
  };
}

/** What the wave left: Redis's counts, the API alive or not, the outbox drained, the rows. */
async function afterWave(
  ctx: WaveContext,
  api: Child,
  wave: WaveResult<Ask>,
  before: Awaited<ReturnType<typeof countersBefore>>,
) {
  const redisAfter = before.redis ? await commandStats(ctx.redisUrl) : null;
  const counter = before.redis ? await admissionCount(ctx.redisUrl, ctx.eventId) : null;
  // An answer that never came may be the API gone: then no /metrics and no fan-out to wait for.
  const unanswered = wave.shots.some((shot) => shot.status.startsWith('error'));
  const crash = await ctx.holder.crashed(unanswered ? 3_000 : 0);
  if (!crash) ctx.holder.notePeak();
  const pending = crash ? null : await drainOutbox(ctx.benchUrl);
  const wireDrained = subtract(ctx.proxy.counts(), before.wire);
  const metricsAfter = crash ? null : await holdMetrics(api.url, HOLD_OUTCOMES, true);
  return {
    crash,
    counterBefore: before.counter,
    counter,
    wireDrained,
    redis: before.redis && redisAfter ? commandDelta(redisAfter, before.redis) : null,
    metrics: metricsAfter && subtract(metricsAfter, before.metrics),
    pending,
    loadAverageBefore: before.load,
    apiLog: api.logSince(before.log),
    rows: await storedRows(ctx.benchUrl, ctx.eventId),
  };
}

/** One wave of `asks`, with `fault` around it; answers the raw measurements. */
export async function runWave(ctx: WaveContext, name: string, asks: Ask[], fault: WaveFault) {
  const api = await ctx.holder.alive();
  const n = fmt(asks.length);
  run.log(`${name}: warming ${n} tokens, opening ${n} connections`);
  const tokens = asks.map(({ customer }) => ({ id: '', token: ctx.tokens[customer] }));
  await http.warmCaches(api.url, tokens, []);
  const agent = await waveAgent(api.url, asks.length, { timeoutMs: WAVE_TIMEOUT_MS });
  try {
    const pendingBefore = await drainOutbox(ctx.benchUrl);
    await fault.before?.();
    const before = await countersBefore(ctx, api, fault.redisDown === true);
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
    const wire = subtract(ctx.proxy.counts(), before.wire);
    const statements = statementsByKind(ctx.proxy.statementLog(logFrom));
    const after = await afterWave(ctx, api, wave, before);
    return { ...after, wave, wire, statements, pendingBefore };
  } finally {
    await agent.destroy().catch(() => undefined);
  }
}
export type WaveRaw = Awaited<ReturnType<typeof runWave>>;
