import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import * as http from '../../support/bench/bench-http';
import * as proc from '../../support/bench/child-processes';
import { FrameCache, type SseSubscriber, StatusCodes } from '../../support/bench/sse-subscribers';
import { round } from '../../support/bench/stats';
import { fmt } from '../../support/bench/table';
import { freePort } from '../../support/redis-server';
import { latencies, type MessageTime } from './latency';
import { children, clock, log, SETTLE_TIMEOUT_MS, streamSampler, until } from './stream-run';
import { openSubscribers, subscriberAgent } from './subscribers';

/*
 * The ceilings, the API stopped: the minimal fan-out (fanout-server.ts) to as many new
 * subscribers, the same frames replayed at the same moments; raw Redis PUBLISH (redis-benchmark).
 */

const REDIS_BENCHMARK_CLIENTS = 50;
const REDIS_BENCHMARK_REQUESTS = 200_000;

export function loopDelay(h: ReturnType<typeof monitorEventLoopDelay>) {
  const ms = (ns: number) => round(ns / 1e6);
  return { p50: ms(h.percentile(50)), p99: ms(h.percentile(99)), max: ms(h.max) };
}

export interface FanoutOptions {
  subscribers: number;
  labels: readonly string[];
  snapshotFrame: string;
  messages: readonly MessageTime[];
  windowStart: number;
}

/** Each message written to the server at its moment in the run (relative to `windowStart`). */
async function replay(server: proc.Child, o: FanoutOptions): Promise<MessageTime[]> {
  const start = clock() + 20;
  const sent: MessageTime[] = [];
  for (const m of o.messages) {
    await until(start + (m.t0 - o.windowStart));
    sent.push({ ...m, t0: clock() });
    server.child.stdin?.write(`${JSON.stringify({ frame: m.frame })}\n`);
  }
  return sent;
}

async function measureFanout(server: proc.Child, origin: string, o: FanoutOptions) {
  const agent = subscriberAgent(o.subscribers + 16);
  const cache = new FrameCache(o.labels, new StatusCodes());
  let subscribers: SseSubscriber[] = [];
  try {
    server.child.stdin?.write(`${JSON.stringify({ snapshot: o.snapshotFrame })}\n`);
    log(`ceiling: minimal fan-out, opening ${fmt(o.subscribers)} streams`);
    const opened = await openSubscribers({
      origin,
      path: '/stream',
      n: o.subscribers,
      agent,
      cache,
      expectedMessages: o.messages.length + 16,
    });
    subscribers = opened.subscribers;
    await sleep(500);
    log(`ceiling: replaying ${fmt(o.messages.length)} messages at their moments`);
    const sampling = streamSampler({ [server.pid]: 'fan-out server (node)' });
    const delay = monitorEventLoopDelay({ resolution: 10 });
    delay.enable();
    await sampling.start();
    const sent = await replay(server, o);
    const lastSeq = o.messages.at(-1)?.seq ?? 0;
    const deadline = clock() + SETTLE_TIMEOUT_MS;
    while (clock() < deadline && subscribers.some((s) => s.seq < lastSeq)) await sleep(50);
    const cpu = await sampling.stop();
    delay.disable();
    return {
      subscribers: o.subscribers,
      openMs: opened.openMs,
      lost: subscribers.filter((s) => s.failures.length > 0).length + opened.failures.length,
      behind: subscribers.filter((s) => s.seq < lastSeq).length,
      latency: latencies(subscribers, sent),
      cpu,
      eventLoopDelayMs: loopDelay(delay),
      skipped: null as string | null,
    };
  } finally {
    for (const s of subscribers) s.close();
    await agent.destroy().catch(() => undefined);
  }
}

export async function fanoutCeiling(o: FanoutOptions) {
  const port = await freePort();
  const entry = join(__dirname, 'fanout-server.ts');
  const env = { ...process.env, PORT: String(port) };
  // process.execArgv carries tsx's loader, so that the child can require a .ts file.
  const server = children.node('fan-out server', entry, env, process.execArgv);
  const origin = `http://127.0.0.1:${port}`;
  try {
    const probe = () => http.call(origin, 'GET', '/health', { timeoutMs: 1_000 });
    await proc.waitHealthy(server, probe, 10_000);
    return await measureFanout(server, origin, o);
  } finally {
    await children.stop(server);
  }
}

/** PUBLISH of a 160-byte message on the private Redis, REDIS_BENCHMARK_CLIENTS clients. */
export async function publishCeiling(url: string) {
  log(`ceiling: PUBLISH on the private Redis, ${REDIS_BENCHMARK_CLIENTS} clients`);
  const target = ['-h', '127.0.0.1', '-p', new URL(url).port];
  const load = ['-c', String(REDIS_BENCHMARK_CLIENTS), '-n', String(REDIS_BENCHMARK_REQUESTS)];
  const command = ['PUBLISH', 'bench:channel', 'x'.repeat(160)];
  const args = ['redis-benchmark', ...target, ...load, '--csv', ...command];
  try {
    const { code, output } = await children.runToEnd('redis-benchmark', args, process.env, 120_000);
    const line = output.split('\n').find((l) => l.startsWith('"PUBLISH'));
    const cells = line?.split(',').map((cell) => Number(cell.replace(/"/g, '')));
    if (code === 0 && cells && Number.isFinite(cells[1])) {
      return { perSecond: round(cells[1]), skipped: null as string | null };
    }
    return { perSecond: null, skipped: `redis-benchmark exit ${code}` };
  } catch (error) {
    return { perSecond: null, skipped: `redis-benchmark: ${(error as Error).message}` };
  }
}
