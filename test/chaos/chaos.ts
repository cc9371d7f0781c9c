/*
 * Chaos run: customers book, pay, release and cancel seats on 3 built API instances (LOCK_MODE=
 * redlock over 3 redis-server nodes, a private PostgreSQL) behind a round-robin proxy that retries
 * nothing, with the gateway simulator and a webhook receiver, while faults hit on a schedule
 * (chaos-load.ts); then every check (chaos-checks.ts), exit 1 on any violation. See
 * docs/reliability.md.
 */
import { randomBytes } from 'node:crypto';
import { Agent } from 'undici';
import * as http from '../support/bench/bench-http';
import { withClient } from '../support/bench/bench-postgres';
import { apiNodeOptions } from '../support/bench/child-processes';
import * as cli from '../support/bench/cli';
import { mapLimit } from '../support/bench/stats';
import { printReport } from '../support/bench/report';
import { snapshotDist } from '../support/dist-snapshot';
import { OutboundWebhookReceiver } from '../support/outbound-webhook-receiver';
import { PrivatePostgres } from '../support/private-postgres';
import { freePort, RedisServer } from '../support/redis-server';
import { RoundRobinProxy } from '../support/round-robin-proxy';
import { checkAll, exitLines } from './chaos-checks';
import { clock, envOf, log, run, Supervised } from './chaos-cluster';
import { bump, GATEWAY_SLOW_MS, HOLD_TTL_SECONDS, Load, schedule, Traffic } from './chaos-load';

const [API_DB, GATEWAY_DB] = ['seatlock_chaos', 'seatlock_chaos_gateway'];
const [INSTANCES, REDIS_NODES, HOT_SEATS, COLD_ROWS] = [3, 3, 4, 40]; // cold: rows of 100 seats
const BUILT = {
  api: 'apps/api/apps/api/src/main.js',
  gateway: 'apps/gateway-sim/apps/gateway-sim/src/main.js',
};
const tenths = (n: number): number => Math.round(n * 10) / 10;

const USAGE = `Usage: npm run chaos -- [--quick] [--duration S] [--customers N] [--settle S] [--json]

  --quick        a short run for CI: 45 s of load, every fault kind once (about 90 s in all)
  --duration S   seconds of load (default 120; 45 with --quick)
  --customers N  virtual customers (default 50)
  --settle S     at most this long for the system to settle before the checks (default 60; 40 quick)
  --json         also print one JSON object as the last line of stdout`;

type Options = ReturnType<typeof readOptions>;

function readOptions() {
  const [flag, value] = [{ type: 'boolean' }, { type: 'string' }] as const;
  const spec = { quick: flag, json: flag, duration: value, customers: value, settle: value };
  const args = cli.parseBenchArgs(spec, USAGE);
  const quick = args.quick ?? false;
  const int = (name: keyof typeof spec, fallback: number, min: number, max: number): number => {
    const n = cli.numberOption(name, args[name], fallback, min, max);
    if (Number.isInteger(n)) return n;
    throw new cli.BenchError(`--${name} needs an integer, got ${n}`);
  };
  const duration = int('duration', quick ? 45 : 120, 10, 3600);
  const settle = int('settle', quick ? 40 : 60, 5, 600);
  return { quick, json: args.json, duration, customers: int('customers', 50, 1, 500), settle };
}

/** PostgreSQL, Redis, the proxy, the receiver, the gateway and the API instances, all ready. */
async function startWorld() {
  const { files: built, remove } = await snapshotDist(BUILT, log);
  run.track({ stop: async () => remove(), killSync: remove });
  log('private PostgreSQL cluster (initdb)');
  const pg = run.track(await PrivatePostgres.start(['max_connections=200', 'shared_buffers=64MB']));
  await withClient(pg.url('postgres'), async (client) => {
    for (const db of [API_DB, GATEWAY_DB]) await client.query(`CREATE DATABASE ${db}`);
  });
  log(`PostgreSQL on ${pg.port}; ${REDIS_NODES} redis-server nodes`);
  const redis: RedisServer[] = [];
  for (let i = 0; i < REDIS_NODES; i += 1) redis.push(run.track(await RedisServer.start()));
  const ports = await Promise.all(Array.from({ length: INSTANCES + 1 }, () => freePort()));
  const proxy = run.track(await RoundRobinProxy.start(ports.slice(1), 30_000));
  const receiver = await OutboundWebhookReceiver.start();
  receiver.respond = () => (Math.random() < 0.05 ? 503 : 200); // so that the retries run too
  run.track({ stop: () => receiver.close() });
  const hex = (): string => randomBytes(16).toString('hex');
  const [adminToken, secret] = [`chaos-admin-${hex()}`, `whsec_chaos_${hex()}`];
  const app = (name: string, entry: string, port: number, env: string, options: string[] = []) =>
    new Supervised(name, entry, envOf(env), `http://127.0.0.1:${port}`, options);
  const gatewayEnv = `GATEWAY_PORT=${ports[0]} GATEWAY_HOST=127.0.0.1 GATEWAY_LOG_LEVEL=warn
    GATEWAY_DATABASE_URL=${pg.url(GATEWAY_DB)} GATEWAY_WEBHOOK_URL=${proxy.url}/payments/webhook
    GATEWAY_WEBHOOK_SECRET=${secret} GATEWAY_SLOW_MS=${GATEWAY_SLOW_MS}
    GATEWAY_ASYNC_DELAY_MS=1500 GATEWAY_WEBHOOK_RETRY_BASE_MS=250`;
  const gateway = app('gateway simulator', built.gateway, ports[0], gatewayEnv);
  await gateway.start('/health', 60_000);
  const apiEnv = (port: number, migrate: boolean): string => `LOCK_MODE=redlock
    PORT=${port} HOST=127.0.0.1 DATABASE_URL=${pg.url(API_DB)} MIGRATIONS_RUN=${migrate}
    REDIS_URLS=${redis.map((node) => node.url).join(',')} REDIS_URL=${redis[0].url}
    ADMIN_TOKEN=${adminToken} GATEWAY_URL=${gateway.url} GATEWAY_WEBHOOK_SECRET=${secret}
    RATE_LIMIT_PER_MINUTE=0 REGISTRATIONS_PER_IP_PER_HOUR=0 LOG_LEVEL=warn DB_POOL_SIZE=10 WEBHOOK_ALLOW_PRIVATE_NETWORKS=true
    HOLD_TTL_SECONDS=${HOLD_TTL_SECONDS} SWEEP_INTERVAL_MS=500 RECONCILE_INTERVAL_MS=1000
    NOTIFY_POLL_MS=500 NOTIFY_RETRY_BASE_MS=250 NOTIFY_MAX_ATTEMPTS=8`;
  // With `npm start`'s heap cap: the faults must not push an instance out of memory.
  const apiApp = (port: number, i: number): Supervised =>
    app(`API ${i}`, built.api, port, apiEnv(port, i === 0), apiNodeOptions());
  const apis = ports.slice(1).map(apiApp);
  log(`API 0 (migrations) on ${ports[1]}`);
  await apis[0].start('/health/ready', 90_000);
  apis[0].env = envOf(apiEnv(ports[1], false)); // restarts skip the migrations: they are done
  log(`API 1, 2 on ${ports[2]}, ${ports[3]}; proxy ${proxy.url}`);
  await Promise.all(apis.slice(1).map((api) => api.start('/health/ready', 90_000)));
  return { pg, redis, proxy, receiver, gateway, apis, adminToken };
}
type World = Awaited<ReturnType<typeof startWorld>>;

/** The two events and the customers, each with a webhook endpoint of its own at the receiver. */
async function setUp({ adminToken, receiver, proxy }: World, n: number) {
  const hot = await http.createEvent(proxy.url, adminToken, 'Hot', 1, HOT_SEATS, 9_000);
  const cold = await http.createEvent(proxy.url, adminToken, 'Cold', COLD_ROWS, 100, 3_000);
  log(`${n} customers, each with a webhook endpoint`);
  const tag = `chaos-${randomBytes(4).toString('hex')}`;
  const customers = await http.registerCustomers(proxy.url, n, tag);
  const endpoints = new Map<string, number>();
  await mapLimit(customers, 8, async ({ token }, i) => {
    const body = { url: `${receiver.url}/${i}` };
    const answer = await http.call(proxy.url, 'POST', '/webhook-endpoints', { token, body });
    const hook = http.expectStatus(answer, 201, 'POST /webhook-endpoints');
    receiver.secrets.set(String(i), hook.secret);
    endpoints.set(hook.id, i);
  });
  return { events: { hot, cold }, endpoints, tokens: customers.map((c) => c.token) };
}

async function chaos(options: Options) {
  const wallStart = Date.now();
  const world = await startWorld();
  const { apis, proxy, gateway, pg } = world;
  const agent = new Agent({ connections: options.customers * 2 + 16, keepAliveTimeout: 10_000 });
  const traffic = new Traffic(proxy.url, agent);
  const { events, tokens, endpoints } = await setUp(world, options.customers);
  const load = new Load({ ...world, traffic, events });
  const faults = schedule(options.quick, options.duration);
  log(`load: ${tokens.length} customers for ${options.duration} s; ${faults.length} faults`);
  await load.run(tokens, faults, options.duration);
  const loadSeconds = tenths(clock.since());
  log(`load done after ${loadSeconds} s: ${traffic.total} requests`);
  const db = { api: pg.url(API_DB), gateway: pg.url(GATEWAY_DB) };
  const input = { ...world, db, gatewayUrl: gateway.url, traffic, endpoints, load };
  const found = await checkAll({ ...input, settleSeconds: options.settle });
  await agent.close().catch(() => undefined);
  const all = [...apis, gateway];
  const errorLogs: Record<string, number> = {};
  for (const [line, n] of apis.flatMap((api) => api.errorMessages())) bump(errorLogs, line, n);
  const topErrors = Object.entries(errorLogs).sort((a, b) => b[1] - a[1]);
  const { fiveHundreds, total, byStatus, byKind } = traffic;
  return {
    ...{ chaos: options.quick ? 'quick' : 'full', ok: found.violations.length === 0 },
    ...{ customers: options.customers, durationSeconds: options.duration, loadSeconds },
    ...{ wallSeconds: tenths((Date.now() - wallStart) / 1000), faults: load.faults },
    pgWindows: load.pgWindows,
    requests: {
      ...{ total, byStatus, byKind, excused500: fiveHundreds.length - found.unexcused500 },
      ...{ unexcused500: found.unexcused500, fiveHundreds: fiveHundreds.slice(0, 50) },
    },
    proxyByInstance: proxy.counts,
    restarts: Object.fromEntries(all.map((app) => [app.name, app.starts - 1])),
    unexpectedExits: all.flatMap((app) =>
      app.unexpectedExits.map((e) => ({ ...e, app: app.name })),
    ),
    ...found.figures,
    ...{ outboxDeadListed: found.outboxDeadListed, methods: load.methods, actions: load.actions },
    ...{ webhooks: found.webhooks, answersChecked: found.answersChecked, settle: found.settled },
    ledger: found.ledger,
    errorLogs: Object.fromEntries(topErrors.slice(0, 10)),
    anomalies: exitLines(gateway), // the simulator stands in for the provider: a rig anomaly
    violations: found.violations,
  };
}

type Report = Awaited<ReturnType<typeof chaos>>;

/** `{a: 1, b: {c: 2}}` as "a: 1, b: c: 2", the keys sorted. */
function flat(value: unknown): string {
  if (!value || typeof value !== 'object') return String(value);
  const entries = Object.entries(value).sort();
  return entries.map(([k, v]) => `${k}: ${flat(v)}`).join(', ') || '-';
}

/** The report's lines: the faults, the requests, the rows, the checks, the verdict. */
function reportLines(r: Report): string[] {
  const rule = '-'.repeat(100);
  const rows = (entries: Record<string, unknown>): string[] =>
    Object.entries(entries).map(([name, value]) => `  ${name.padEnd(34)} ${flat(value)}`);
  const span = ({ at, until }: Report['faults'][number]): string =>
    `${at.toFixed(1)}-${(until ?? at).toFixed(1)} s`.padEnd(14);
  const { violations, attempts, ...ledger } = r.ledger;
  const setting = `${INSTANCES} API instances, LOCK_MODE=redlock over ${REDIS_NODES} Redis nodes`;
  return [
    `\nChaos run (${r.chaos}): ${r.customers} customers, ${r.durationSeconds} s of load, ${setting}, hold TTL ${HOLD_TTL_SECONDS} s`,
    ...[rule, '  Faults injected (seconds from the start of the load)'],
    ...r.faults.map((f) => `  ${span(f)} ${f.kind.padEnd(13)} ${f.detail}`),
    ...[rule, '  Requests by status', ...rows({ all: r.requests.byStatus })],
    ...rows(Object.fromEntries(Object.entries(r.requests.byKind).map(([k, v]) => [`  ${k}`, v]))),
    ...rows({
      '500 while PostgreSQL was down': r.requests.excused500,
      '500 at any other time': r.requests.unexcused500,
    }),
    rule,
    ...rows({
      'bookings by status': r.bookings,
      'payments by status': r.payments,
      'payment methods asked': r.methods,
      'customer actions': r.actions,
      'outbox messages by status': r.outbox,
      'deliveries by status': r.deliveries,
      'webhooks received (503 on purpose)': r.webhooks,
      'answers checked against rows': r.answersChecked,
      settled: r.settle,
      'held bookings past TTL at the end': r.heldPastTtl,
      'check:ledger': { violations: violations.length, ...ledger, reads: attempts },
      'API error-level log lines': r.errorLogs,
    }),
    ...(r.anomalies.length ? [rule, '  Anomalies of the test rig (not violations):'] : []),
    ...r.anomalies.map((a) => `  ~ ${a}`),
    ...[rule, `  Violations: ${r.violations.length}`],
    ...r.violations.slice(0, 40).map((v) => `  ! ${v}`),
    ...[rule, `  wall time ${r.wallSeconds} s`],
    r.ok ? 'chaos: PASS (0 violations)' : `chaos: FAIL (${r.violations.length} violations)`,
  ];
}

async function main(options: Options): Promise<number> {
  let report: Report;
  try {
    report = await chaos(options);
  } catch (error) {
    process.stdout.write('chaos: ERROR (the run did not complete)\n');
    throw error;
  }
  printReport({ lines: reportLines(report) }, options.json ? report : undefined);
  return report.ok ? 0 : 1;
}

let options: Options | undefined;
try {
  options = readOptions();
} catch (error) {
  process.stderr.write(`${(error as Error).message}\n`);
  process.exitCode = 2;
}
if (options) {
  const [given, totalMs] = [options, (options.duration + options.settle + 240) * 1000];
  run.main(() => main(given), totalMs);
}
