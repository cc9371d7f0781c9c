import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client as PgClient } from 'pg';
import { freePort } from '../support/redis-server';
import * as pg from '../support/bench/bench-postgres';
import type { BenchRun } from '../support/bench/bench-run';
import {
  API_DB,
  cpuSampler,
  drain,
  GATEWAY_DB,
  gatewayCounts,
  type GatewayCounts,
  settle,
} from './flow-counters';
import { runPhase, type Seat, type Vu } from './flow-load';

/*
 * The flow benchmark's stack (the simulator and the API behind a counting proxy) and its measured
 * window: the warm-up, then the load with every counter read before and after.
 */

export type Stack = Awaited<ReturnType<typeof startStack>>;
export type Measurement = Awaited<ReturnType<typeof measure>>;

/** The databases, the proxy, the API, the simulator, and two PostgreSQL sessions to read. */
export async function startStack(bench: BenchRun, redisUrl: string) {
  const apiDbUrl = await bench.freshDatabase(API_DB);
  const gatewayDbUrl = await bench.freshDatabase(GATEWAY_DB);
  const proxy = await bench.countingProxy(apiDbUrl);
  // The API learns the simulator's port first; the simulator, the API's webhook URL then.
  const gatewayPort = await freePort();
  const secret = `whsec_bench_${randomBytes(16).toString('hex')}`;
  const api = await bench.startApi({
    database: proxy.urlFor(apiDbUrl),
    redis: redisUrl,
    gateway: `http://127.0.0.1:${gatewayPort}`,
    // The outbox's safety-net poll every 5 s, not every second, so that the counters can settle;
    // NOTIFY still wakes the dispatcher for every message a booking writes, and that counts.
    env: { GATEWAY_WEBHOOK_SECRET: secret, NOTIFY_POLL_MS: '5000' },
  });
  const gateway = await bench.startGateway({
    database: gatewayDbUrl,
    webhookUrl: `${api.url}/payments/webhook`,
    secret,
    port: gatewayPort,
  });
  const [admin, gatewayDb] = [pg.databaseUrl('postgres'), gatewayDbUrl].map((url) => {
    const client = new PgClient(url).on('error', () => undefined);
    bench.track({ stop: () => client.end() });
    return client;
  });
  await Promise.all([admin.connect(), gatewayDb.connect()]);
  return { admin, gatewayDb, proxy, api, gateway, apiDbUrl };
}

/** The warm-up, then the measured window with the counters before and after. */
export async function measure(
  s: Stack,
  o: { customers: number; warmup: number; duration: number },
  { vus, seats }: { vus: Vu[]; seats: Seat[] },
  { children, log }: BenchRun,
) {
  log(`warm-up: ${o.customers} customers for ${o.warmup} s`);
  const warmup = await runPhase(o.warmup, vus, seats, s.api);
  const warmupDone = Date.now();
  log('waiting for the webhooks, the outbox and the PostgreSQL counters');
  await drain(s.gatewayDb, s.apiDbUrl);
  const before = await settle(warmupDone);
  const [wire0, gateway0] = [s.proxy.counts(), await gatewayCounts(s.gatewayDb)];
  log(`measuring: ${o.customers} customers for ${o.duration} s`);
  const sampler = cpuSampler(s.admin, s.api.pid, s.gateway.pid);
  await sampler.start();
  const cpuDone = sleep(o.duration * 1000).then(() => sampler.stop());
  const measured = await runPhase(o.duration, vus, seats, s.api);
  const cpu = await cpuDone;
  const outbox = await drain(s.gatewayDb, s.apiDbUrl);
  const [wire, gateway] = [s.proxy.counts(), await gatewayCounts(s.gatewayDb)];
  const after = await settle(Date.now());
  await Promise.all(vus.map((vu) => vu.client.close()));
  log('stopping the API: a LISTEN session publishes its counters only when it exits');
  await children.stop(s.api);
  const publishedAtApiExit = (await settle(0)).xacts - after.xacts;
  const delta = (key: keyof GatewayCounts) => gateway[key] - gateway0[key];
  return {
    warmup,
    measured,
    cpu,
    outbox,
    before,
    after,
    publishedAtApiExit,
    wire: {
      statements: wire.statements - wire0.statements,
      roundTrips: wire.roundTrips - wire0.roundTrips,
    },
    gateway: { intents: delta('intents'), posts: delta('posts'), webhooks: delta('webhooks') },
  };
}
