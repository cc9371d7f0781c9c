import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import * as http from '../../support/bench/bench-http';
import * as proc from '../../support/bench/child-processes';
import { fmt } from '../../support/bench/report';
import { FrameCache } from '../../support/bench/sse-subscribers';
import { round } from '../../support/bench/stats';
import { freePort } from '../../support/redis-server';
import { latencies, type MessageTime } from './latency';
import { children, clock, log, SETTLE_TIMEOUT_MS, until, watched } from './stream-run';
import { openSubscribers } from './subscribers';

/*
 * The ceilings, the API stopped: the minimal fan-out (fanout-server.ts) to as many new
 * subscribers, the same frames replayed at the same moments; raw Redis PUBLISH (redis-benchmark).
 */

const REDIS_BENCHMARK_CLIENTS = 50;

export interface FanoutOptions {
  subscribers: number;
  labels: readonly string[];
  snapshotFrame: string;
  messages: readonly MessageTime[];
  /** When the holds began: each message is replayed at its moment relative to it. */
  windowStart: number;
}

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
  server.child.stdin?.write(`${JSON.stringify({ snapshot: o.snapshotFrame })}\n`);
  log(`ceiling: minimal fan-out, opening ${fmt(o.subscribers)} streams`);
  const cache = new FrameCache(o.labels);
  const expected = o.messages.length + 16;
  const opened = await openSubscribers(origin, '/stream', o.subscribers, cache, expected);
  const { subscribers, openMs, failures } = opened;
  try {
    await sleep(500);
    log(`ceiling: replaying ${fmt(o.messages.length)} messages at their moments`);
    const lastSeq = o.messages.at(-1)?.seq ?? 0;
    const run = await watched({ [server.pid]: 'fan-out server (node)' }, async () => {
      const sent = await replay(server, o);
      const deadline = clock() + SETTLE_TIMEOUT_MS;
      while (clock() < deadline && subscribers.some((s) => s.seq < lastSeq)) await sleep(50);
      return sent;
    });
    return {
      openMs,
      lost: subscribers.filter((s) => s.failures.length > 0).length + failures.length,
      behind: subscribers.filter((s) => s.seq < lastSeq).length,
      latency: latencies(subscribers, run.result),
      cpu: run.cpu,
      eventLoopDelayMs: run.eventLoopDelayMs,
    };
  } finally {
    await opened.close();
  }
}

export async function fanoutCeiling(o: FanoutOptions) {
  const port = await freePort();
  const env = { ...process.env, PORT: String(port) };
  // process.execArgv carries tsx's loader, so that the child can require a .ts file.
  const entry = join(__dirname, 'fanout-server.ts');
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
  const args = ['redis-benchmark', '-h', '127.0.0.1', '-p', new URL(url).port];
  args.push('-c', String(REDIS_BENCHMARK_CLIENTS), '-n', '200000', '--csv');
  args.push('PUBLISH', 'bench:channel', 'x'.repeat(160));
  try {
    const { code, output } = await children.runToEnd('redis-benchmark', args, process.env, 120_000);
    const line = output.split('\n').find((l) => l.startsWith('"PUBLISH'));
    const perSecond = Number(line?.split(',')[1]?.replace(/"/g, ''));
    if (code === 0 && Number.isFinite(perSecond)) {
      return { perSecond: round(perSecond), skipped: null as string | null };
    }
    return { perSecond: null, skipped: `redis-benchmark exit ${code}` };
  } catch (error) {
    return { perSecond: null, skipped: `redis-benchmark: ${(error as Error).message}` };
  }
}
