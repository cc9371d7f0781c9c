import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client as PgClient } from 'pg';
import { freePort } from '../support/redis-server';
import { PgCountingProxy } from '../support/pg-counting-proxy';
import * as http from '../support/bench/bench-http';
import * as pg from '../support/bench/bench-postgres';
import * as proc from '../support/bench/child-processes';
import {
  API_DATABASE,
  cpuSampler,
  drain,
  GATEWAY_DATABASE,
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

/** The databases, the proxy, the simulator, the API; `closers` collects what to close at the end. */
export async function startStack(
  children: proc.ChildProcesses,
  redisUrl: string,
  adminToken: string,
  closers: (() => unknown)[],
) {
  const apiDbUrl = await pg.recreateDatabase(API_DATABASE);
  const gatewayDbUrl = await pg.recreateDatabase(GATEWAY_DATABASE);
  const target = new URL(apiDbUrl);
  const proxy = await PgCountingProxy.start(target.hostname, Number(target.port || 5432));
  closers.push(() => proxy.stop());
  const [apiPort, gatewayPort] = [await freePort(), await freePort()];
  const [apiUrl, gatewayUrl] = [apiPort, gatewayPort].map((port) => `http://127.0.0.1:${port}`);
  const secret = `whsec_bench_${randomBytes(16).toString('hex')}`;
  const probe = (url: string, route: string) => () => http.call(url, 'GET', route);
  const gateway = children.node('gateway simulator', proc.GATEWAY_MAIN, {
    ...process.env,
    GATEWAY_PORT: String(gatewayPort),
    GATEWAY_HOST: '127.0.0.1',
    GATEWAY_LOG_LEVEL: 'warn',
    GATEWAY_DATABASE_URL: gatewayDbUrl,
    GATEWAY_WEBHOOK_SECRET: secret,
    GATEWAY_WEBHOOK_URL: `${apiUrl}/payments/webhook`,
  });
  gateway.url = gatewayUrl;
  await proc.waitHealthy(gateway, probe(gatewayUrl, '/health'), 60_000);
  const api = children.node(
    'API',
    proc.API_MAIN,
    proc.benchApiEnv({
      PORT: String(apiPort),
      DATABASE_URL: proxy.urlFor(apiDbUrl),
      REDIS_URL: redisUrl,
      ADMIN_TOKEN: adminToken,
      GATEWAY_URL: gatewayUrl,
      GATEWAY_WEBHOOK_SECRET: secret,
      // The outbox's safety-net poll every 5 s, not every second, so that the counters can settle;
      // NOTIFY still wakes the dispatcher for every message a booking writes, and that counts.
      NOTIFY_POLL_MS: '5000',
    }),
    proc.apiNodeOptions(),
  );
  api.url = apiUrl;
  await proc.waitHealthy(api, probe(apiUrl, '/health/ready'), 60_000);
  const [admin, gatewayDb] = [pg.databaseUrl('postgres'), gatewayDbUrl].map((url) => {
    const client = new PgClient(url).on('error', () => undefined);
    closers.push(() => client.end());
    return client;
  });
  await Promise.all([admin.connect(), gatewayDb.connect()]);
  return { admin, gatewayDb, proxy, api, gateway, apiDbUrl };
}

/** The warm-up, then the measured window with the counters before and after. */
export async function measure(
  s: Stack,
  o: { customers: number; warmup: number; duration: number },
  [vus, seats]: [Vu[], Seat[]],
  { children, log }: { children: proc.ChildProcesses; log: (message: string) => void },
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
