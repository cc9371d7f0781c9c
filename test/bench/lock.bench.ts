/*
 * Lock benchmark: one acquire+release pair of our LockProvider (libs/lock) next to the least a
 * correct Redis lock needs (raw: SET NX PX, then compare-and-delete by EVALSHA) and to redlock and
 * redis-semaphore, on a redis-server of its own.
 *
 *   npm run bench:lock -- [--json] [--duration S] [--rounds N] [--inflight N] [--diagnose] ...
 *
 * Uncontended: 1, then --inflight workers loop pairs, each on its own key; best of --rounds rounds
 * (order reversed every other round), with CPU per pair of Node and redis-server. Contention:
 * --contenders attempts on one key at once, --contention-runs times; exactly one must win, else
 * exit 1. Goals (ours >= 0.9x raw and >= both libraries) print MET or MISSED, not an exit code.
 * --diagnose adds ours-scripts (our Lua scripts over bare ioredis). See docs/benchmarks.md.
 */
import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { Mutex } from 'redis-semaphore';
import { type Lease, LockBusyError, LockProvider } from '../../libs/lock/src';
import { ACQUIRE_MANY_SCRIPT, RELEASE_SCRIPT } from '../../libs/lock/src/lock.scripts';
import { RedisServer } from '../support/redis-server';
import { BenchRun } from '../support/bench/bench-run';
import * as cli from '../support/bench/cli';
import { BenchError, withTimeout } from '../support/bench/cli';
import { machineBusySeconds } from '../support/bench/proc-stats';
import { fmt, printReport, type TableRow } from '../support/bench/report';
import { percentile, ratio, round } from '../support/bench/stats';

// redlock's package.json "exports" name no types, so TypeScript cannot find them via 'redlock'.
type RedlockModule = typeof import('../../node_modules/redlock/dist/index.js');
const { default: Redlock, ExecutionError } = createRequire(__filename)('redlock') as RedlockModule;

const run = new BenchRun('lock');
const CONTENDED_KEY = 'bench:{contended}';
/** Cores used by other processes during a phase above which its figures are flagged. */
const BUSY_CORES = 0.25;
/** The provider's client settings (lock.provider.ts) for every contender: same timers per command. */
const CLIENT = {
  ...{ enableOfflineQueue: false, maxRetriesPerRequest: 0, lazyConnect: true },
  ...{ commandTimeout: 1000, connectTimeout: 2000, disconnectTimeout: 200 },
  retryStrategy: (attempt: number) => Math.min(attempt * 200, 2000),
};
const RELEASE_LUA = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

const IDS = ['raw', 'ours', 'redlock', 'redis-semaphore', 'ours-scripts'] as const;
type Id = (typeof IDS)[number];
/** ours must reach these shares of the others' pairs/s at --inflight. */
const GOALS = { raw: 0.9, redlock: 1, 'redis-semaphore': 1 };
/** Numeric options: default, min, max, integer only, help. */
const NUMERIC = {
  duration: [3, 0.1, 600, false, 'measured seconds per phase'],
  warmup: [0.5, 0, 60, false, 'warm-up seconds per phase, not measured'],
  rounds: [3, 1, 20, true, 'rounds of all phases; the best round is reported'],
  inflight: [64, 1, 1000, true, 'workers of the concurrent phase, each on its own key'],
  ttl: [10_000, 1000, 600_000, true, 'lease TTL in ms for every contender'],
  contenders: [100, 2, 10_000, true, 'attempts on one key per contention run'],
  'contention-runs': [20, 1, 1000, true, 'contention runs per contender; median reported'],
} as const;
type Numeric = keyof typeof NUMERIC;
type Options = Record<Numeric, number> & { json: boolean; ids: Id[]; bin: string };

const USAGE = [
  'Usage: npm run bench:lock -- [options]\n',
  ...Object.entries(NUMERIC).map(
    ([name, [d, , , , help]]) => `  --${`${name} N`.padEnd(19)}${help} (${d})`,
  ),
  `  --only LIST          comma-separated subset of ${IDS.join(',')}`,
  '  --diagnose           also run ours-scripts: our Lua scripts over bare ioredis',
  '  --redis-server PATH  redis-server binary (default: redis-server on PATH)',
  '  --json               also print one JSON object as the last line of stdout',
].join('\n');

function readOptions(): Options {
  const names = Object.keys(NUMERIC) as Numeric[];
  const [text, flag] = [{ type: 'string' }, { type: 'boolean' }] as const;
  const spec = { ...Object.fromEntries(names.map((name) => [name, text])), only: text };
  const args = cli.parseBenchArgs(
    { ...spec, 'redis-server': text, json: flag, diagnose: flag },
    USAGE,
  ) as Record<string, string | undefined>;
  const only = cli.listOption('only', args.only, IDS);
  const ids = only.length > 0 ? only : IDS.filter((id) => id !== 'ours-scripts' || args.diagnose);
  const options = { json: Boolean(args.json), bin: args['redis-server'] ?? 'redis-server', ids };
  const numbers = {} as Record<Numeric, number>;
  for (const name of names) {
    const [fallback, min, max, integer] = NUMERIC[name];
    numbers[name] = cli.numberOption(name, args[name], fallback, min, max);
    if (integer && !Number.isInteger(numbers[name])) throw new BenchError(`--${name}: integer`);
  }
  return { ...options, ...numbers };
}

const errorMessage = (e: unknown) => (e instanceof Error ? `${e.name}: ${e.message}` : String(e));

/* Contenders. `take` answers a handle, or null (or an error `busy` accepts) when the key is held;
 * `free` whether it freed the key; `prefix` goes before the key in Redis. */
interface Contender<H = unknown> {
  take(key: string): Promise<H | null>;
  busy?(error: unknown): boolean;
  free(handle: H): Promise<boolean>;
  prefix: string;
  close(): Promise<unknown>;
}
type Owned = { key: string; owner: string };

async function connect(url: string): Promise<Redis> {
  const client = new Redis(url, CLIENT);
  // Failures reach the command that hit them; the event itself would only crash the process.
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

const quit = (client: Redis): Promise<unknown> =>
  withTimeout(client.quit(), 2000, 'QUIT').catch(() => client.disconnect());

async function openRaw(ttlMs: number, url: string): Promise<Contender<Owned>> {
  const client = await connect(url);
  const sha = String(await client.script('LOAD', RELEASE_LUA));
  return {
    async take(key) {
      const owner = randomUUID();
      return (await client.set(key, owner, 'PX', ttlMs, 'NX')) === 'OK' ? { key, owner } : null;
    },
    free: async ({ key, owner }) => (await client.evalsha(sha, 1, key, owner)) === 1,
    prefix: '',
    close: () => quit(client),
  };
}

/** Our two scripts without the provider's JavaScript: splits ours' gap to raw into Lua and JS. */
async function openOursScripts(ttlMs: number, url: string): Promise<Contender<Owned>> {
  const client = await connect(url);
  const acquireSha = String(await client.script('LOAD', ACQUIRE_MANY_SCRIPT));
  const releaseSha = String(await client.script('LOAD', RELEASE_SCRIPT));
  const fenceTtl = Math.max(24 * 3600_000, ttlMs); // the provider's default
  return {
    async take(key) {
      const [owner, keys] = [randomUUID(), [`lock:${key}`, `fence:${key}`]];
      const reply = await client.evalsha(acquireSha, 2, ...keys, owner, ttlMs, fenceTtl);
      return (reply as number[])[0] === 1 ? { key, owner } : null;
    },
    free: async (h) => (await client.evalsha(releaseSha, 1, `lock:${h.key}`, h.owner)) === 1,
    prefix: 'lock:',
    close: () => quit(client),
  };
}

async function openOurs(ttlMs: number, url: string): Promise<Contender<Lease>> {
  const provider = new LockProvider({ mode: 'redis', redisUrl: url });
  // It connects on construction and offers no "ready" promise: wait until it reports Redis up.
  for (const deadline = Date.now() + 10_000; !provider.isAvailable(); await sleep(20)) {
    if (Date.now() > deadline) {
      await provider.close();
      throw new BenchError('LockProvider: Redis not available after 10 s');
    }
  }
  // Every lease of a key must carry a larger fencing token than the one before.
  const fences = new Map<string, bigint>();
  return {
    take: (key) => provider.acquireMany([key], ttlMs),
    busy: (error) => error instanceof LockBusyError,
    async free(lease) {
      const [key, last] = [lease.keys[0], fences.get(lease.keys[0]) ?? -1n];
      if (lease.fence <= last) throw new BenchError(`ours: fence ${lease.fence} after ${last}`);
      fences.set(key, lease.fence);
      return (await provider.release(lease)) === 1;
    },
    // Keys that carry a hash tag are used as they are, behind the `lock:` prefix.
    prefix: 'lock:',
    close: () => provider.close(),
  };
}

async function openRedlock(ttlMs: number, url: string) {
  const client = await connect(url);
  const redlock = new Redlock([client], { retryCount: 0 });
  const contender: Contender<InstanceType<RedlockModule['Lock']>> = {
    take: (key) => redlock.acquire([key], ttlMs),
    // Busy and unreachable look alike here; an unreachable Redis shows up as no winner.
    busy: (error) => error instanceof ExecutionError,
    free: (lock) => lock.release().then(() => true),
    prefix: '',
    close: () => quit(client),
  };
  return contender;
}

async function openSemaphore(ttlMs: number, url: string): Promise<Contender<Mutex>> {
  const client = await connect(url);
  // One attempt, no waiting, no auto-refresh: comparable with the others. retryInterval 0 still
  // costs a loser one timer turn: the library sleeps before it checks its attempt limit.
  const settings = { lockTimeout: ttlMs, acquireTimeout: 1000, acquireAttemptsLimit: 1 };
  return {
    async take(key) {
      const lock = new Mutex(client, key, { ...settings, retryInterval: 0, refreshInterval: 0 });
      return (await lock.tryAcquire()) ? lock : null;
    },
    free: (lock) => lock.release().then(() => true),
    prefix: 'mutex:',
    close: () => quit(client),
  };
}

const CONTENDERS: Record<Id, [string, (ttlMs: number, url: string) => Promise<Contender>]> = {
  raw: ['raw SET NX + CAD', openRaw],
  ours: ['ours (LockProvider)', openOurs],
  redlock: ['redlock', openRedlock],
  'redis-semaphore': ['redis-semaphore', openSemaphore],
  'ours-scripts': ['ours, scripts only', openOursScripts],
};

type Setup = Options & { url: string; control: Redis };
const open = (id: Id, s: Setup) =>
  withTimeout(CONTENDERS[id][1](s.ttl, s.url), 10_000, `opening ${id}`);

/** One uncontended pair: throws unless it took and freed the key. */
async function pair(c: Contender, key: string): Promise<void> {
  const handle = await c.take(key);
  if (handle === null || !(await c.free(handle))) throw new BenchError(`${key} busy or kept`);
}

/** One attempt without waiting: a handle, or null when the key is held. */
const attempt = (c: Contender, key: string): Promise<unknown> =>
  c.take(key).catch((error: unknown) => {
    if (c.busy?.(error)) return null;
    throw error;
  });

/** CPU seconds so far of this process, of redis-server (INFO cpu) and of the whole machine. */
async function cpuNow(control: Redis): Promise<number[]> {
  const info = await control.info('cpu');
  const field = (name: string) => Number(new RegExp(`^${name}:([0-9.]+)`, 'm').exec(info)?.[1]);
  const { user, system } = process.cpuUsage();
  const redis = field('used_cpu_user') + field('used_cpu_sys');
  return [(user + system) / 1e6, redis, machineBusySeconds() ?? NaN];
}

const workerKeys = (n: number) => Array.from({ length: n }, (_, i) => `bench:{w${i}}`);

/** `inflight` workers loop pairs on their own keys; the pairs that end inside the window count. */
async function runWindow(c: Contender, inflight: number, s: Setup) {
  const w = { t0: Infinity, t1: Infinity, stop: false, errors: [] as string[] };
  const latencies: number[] = [];
  const worker = async (key: string): Promise<void> => {
    while (!w.stop) {
      const start = performance.now();
      try {
        await pair(c, key);
      } catch (error) {
        return void w.errors.push(errorMessage(error));
      }
      const end = performance.now();
      if (end >= w.t0 && end < w.t1) latencies.push(end - start);
    }
  };
  const workers = Promise.all(workerKeys(inflight).map(worker));
  try {
    await sleep(s.warmup * 1000);
    const before = await cpuNow(s.control);
    w.t0 = performance.now();
    await sleep(s.duration * 1000);
    w.t1 = performance.now();
    const cpu = (await cpuNow(s.control)).map((after, i) => after - before[i]);
    w.stop = true;
    await withTimeout(workers, 10_000, 'workers to finish');
    return { latencies, seconds: (w.t1 - w.t0) / 1000, cpu, errors: w.errors };
  } finally {
    w.stop = true;
  }
}

/** Problems found: each is an anomaly and makes the exit code 1. */
const problems = (at: string, found: unknown[]): string[] =>
  found.flatMap((problem) => (typeof problem === 'string' ? [`${at}: ${problem}`] : []));

/** One phase of one contender, on fresh connections: pairs/s, latency and CPU per pair. */
async function measure(id: Id, inflight: number, s: Setup) {
  const c = await open(id, s);
  try {
    const { latencies, seconds, cpu, errors } = await runWindow(c, inflight, s);
    const sorted = latencies.sort((a, b) => a - b);
    const [pairs, [node, redis, machine]] = [sorted.length, cpu];
    const us = (p: number) => round((percentile(sorted, p) ?? NaN) * 1000, 0);
    const perPair = (cpuSeconds: number) => round((cpuSeconds * 1e6) / pairs, 1);
    const held = await s.control.exists(...workerKeys(inflight).map((k) => c.prefix + k));
    return {
      ...{ inflight, pairs, pairsPerSec: round(pairs / seconds, 0) },
      latencyUs: { p50: us(50), p99: us(99) },
      ...{ nodeUsPerPair: perPair(node), redisUsPerPair: perPair(redis) },
      // Everything else on the machine meanwhile (tests, builds): a fair run keeps it near 0.
      otherCores: round(Math.max(0, machine - node - redis) / seconds, 2),
      problems: problems(`${id} @${inflight}`, [
        errors.length > 0 && `${errors.length} worker(s) failed: ${errors[0]}`,
        held > 0 && `${held} key(s) still held afterwards`,
        pairs === 0 && 'no pair completed',
      ]),
    };
  } finally {
    await c.close().catch(() => undefined);
  }
}
type Phase = Awaited<ReturnType<typeof measure>>;

/** One contention run: single attempts on one key, all issued in the same tick. */
async function contend(c: Contender, s: Setup) {
  const start = performance.now();
  const tries = Array.from({ length: s.contenders }, () => attempt(c, CONTENDED_KEY));
  const settled = await Promise.allSettled(tries);
  const wallMs = performance.now() - start;
  const errors = settled.flatMap((r) => (r.status === 'rejected' ? [errorMessage(r.reason)] : []));
  const winners = settled.flatMap((r) =>
    r.status === 'fulfilled' && r.value !== null ? [r.value] : [],
  );
  for (const winner of winners) {
    await c.free(winner).then(
      (freed) => freed || errors.push('a winner could not release'),
      (error: unknown) => errors.push(errorMessage(error)),
    );
  }
  const held = (await s.control.exists(c.prefix + CONTENDED_KEY)) > 0;
  return { wallMs, winners: winners.length, errors, held };
}

/** All contenders open at once; run -1 of each warms up and is discarded; runs interleaved. */
async function runContention(s: Setup) {
  const opened: { id: Id; c: Contender; runs: Awaited<ReturnType<typeof contend>>[] }[] = [];
  try {
    for (const id of s.ids) opened.push({ id, c: await open(id, s), runs: [] });
    for (let run = -1; run < s['contention-runs']; run += 1) {
      for (let i = 0; i < opened.length; i += 1) {
        const { id, c, runs } = opened[(i + Math.max(run, 0)) % opened.length];
        const result = await withTimeout(contend(c, s), 10_000, `${id} contention run`);
        if (run >= 0) runs.push(result);
      }
    }
  } finally {
    for (const { c } of opened) await c.close().catch(() => undefined);
  }
  return opened.map(({ id, runs }) => {
    const walls = runs.map((run) => run.wallMs).sort((a, b) => a - b);
    const errors = runs.flatMap((run) => run.errors);
    const winnersPerRun = [...new Set(runs.map((run) => run.winners))].sort((a, b) => a - b);
    const [median, min, max] = [percentile(walls, 50), walls[0], walls.at(-1)];
    return {
      id,
      wallMs: { median: round(median, 2), min: round(min, 2), max: round(max, 2) },
      winnersPerRun,
      problems: problems(`${id} contention`, [
        winnersPerRun.join() !== '1' && `winners per run ${winnersPerRun.join('/')}, not 1`,
        errors.length > 0 && `${errors.length} error(s): ${errors[0]}`,
        runs.some((run) => run.held) && 'key still held after the winner released',
      ]),
    };
  });
}

/** Every phase --rounds times, order reversed every other round: noise only ever slows one down. */
async function runRounds(s: Setup) {
  const phases = s.ids.map((id) => ({ id, single: [] as Phase[], concurrent: [] as Phase[] }));
  for (let r = 1; r <= s.rounds; r += 1) {
    for (const entry of r % 2 === 1 ? phases : [...phases].reverse()) {
      for (const slot of ['single', 'concurrent'] as const) {
        const inflight = slot === 'single' ? 1 : s.inflight;
        await sleep(250);
        const budget = (s.warmup + s.duration) * 1000 + 25_000;
        const p = await withTimeout(measure(entry.id, inflight, s), budget, entry.id);
        entry[slot].push(p);
        run.log(
          `round ${r} ${entry.id} @${inflight}: ${p.pairsPerSec}/s, p50 ${p.latencyUs.p50} µs`,
        );
      }
    }
  }
  const best = (all: Phase[]) =>
    all.reduce((a, b) => ((b.pairsPerSec ?? 0) > (a.pairsPerSec ?? 0) ? b : a));
  return phases.map(({ id, single, concurrent }) => ({
    ...{ id, label: CONTENDERS[id][0], single: best(single), concurrent: best(concurrent) },
    pairsPerSecByRound: [single, concurrent].map((all) => all.map((p) => p.pairsPerSec)),
    problems: [...single, ...concurrent].flatMap((p) => p.problems),
  }));
}
type Uncontended = Awaited<ReturnType<typeof runRounds>>;
type Contention = Awaited<ReturnType<typeof runContention>>;

function buildReport(s: Setup, redis: string, uncontended: Uncontended, contention: Contention) {
  const pps = (id: Id) => uncontended.find((e) => e.id === id)?.concurrent.pairsPerSec ?? null;
  const med = (id: Id) => contention.find((c) => c.id === id)?.wallMs.median ?? null;
  const goals = Object.entries(GOALS).map(([against, needed]) => {
    const r = ratio(pps('ours'), pps(against as Id));
    const status = r === null ? 'n/a' : r >= needed ? 'MET' : 'MISSED';
    return { goal: `ours >= ${needed}x ${against}`, against, ratio: r, status };
  });
  const anomalies = [...uncontended, ...contention].flatMap((entry) => entry.problems);
  const libraries = <T>(f: (id: Id) => T) => ({
    redlock: f('redlock'),
    redisSemaphore: f('redis-semaphore'),
  });
  const summary = {
    inflight: s.inflight,
    pairsPerSecond: { raw: pps('raw'), ours: pps('ours'), ...libraries(pps) },
    oursVsRaw: ratio(pps('ours'), pps('raw')),
    contentionMedianMs: { ours: med('ours'), ...libraries(med) },
  };
  const settings = Object.fromEntries(Object.keys(NUMERIC).map((k) => [k, s[k as Numeric]]));
  const ok = anomalies.length === 0;
  return {
    benchmark: 'lock',
    ok,
    summary,
    redis,
    settings,
    goals,
    uncontended,
    contention,
    anomalies,
  };
}
type Report = ReturnType<typeof buildReport>;

/** Per contender: @1 and @inflight against raw, then contention; goals on the rows they judge. */
function tableRows(r: Report): TableRow[] {
  const raw = r.uncontended.find((e) => e.id === 'raw');
  return r.uncontended.flatMap((e): TableRow[] => {
    // ours' row carries its goal against raw; each library's row ours' goal against it.
    const g = r.goals.find((goal) => goal.against === (e.id === 'ours' ? 'raw' : e.id));
    const pairs = (['single', 'concurrent'] as const).map((slot): TableRow => {
      const [p, ceiling] = [e[slot], raw?.[slot].pairsPerSec];
      const { p50, p99 } = p.latencyUs;
      const cpu = `${fmt(p.nodeUsPerPair)}+${fmt(p.redisUsPerPair)}`;
      // Other work on the machine during the phase: its figures understate. Not a failure.
      const busy = (p.otherCores ?? 0) > BUSY_CORES ? `  ~ others used ${p.otherCores} cores` : '';
      const judged = slot === 'concurrent' && e.id !== 'raw' && g;
      return {
        figure: `${e.label} @${p.inflight}`,
        measured: `${fmt(p.pairsPerSec)}/s  ${fmt(p50)}/${fmt(p99)} µs  cpu ${cpu}`,
        ceiling: fmt(ceiling),
        ratio: ratio(p.pairsPerSec, ceiling),
        goal: ((judged ? `${g.status} ${g.goal}` : '') + busy).trim(),
      };
    });
    const c = r.contention.find((entry) => entry.id === e.id);
    const wall =
      c && `${fmt(c.wallMs.median, 2)} (${fmt(c.wallMs.min, 2)}-${fmt(c.wallMs.max, 2)})`;
    const goal = c?.winnersPerRun.join() === '1' ? 'exactly 1 winner every run' : 'NOT 1 winner';
    return [...pairs, { figure: `${e.label} contention`, measured: wall, goal }, { figure: '-' }];
  });
}

async function main(o: Options): Promise<number> {
  const server = run.track(
    await RedisServer.start([], o.bin).catch((error: Error) => {
      throw new BenchError(error.message);
    }),
  );
  const control = await connect(server.url);
  run.track({ stop: () => quit(control) });
  const redis = /redis_version:(\S+)/.exec(await control.info('server'))?.[1] ?? 'unknown';
  run.log(`redis-server ${redis} on ${server.url}`);
  const s: Setup = { ...o, url: server.url, control };
  const uncontended = await runRounds(s);
  run.log(`contention: ${s['contention-runs']} runs of ${s.contenders} attempts on one key`);
  const report = buildReport(s, redis, uncontended, await runContention(s));
  const title = [
    `Lock acquire+release, one key per worker (TTL ${s.ttl} ms, best of ${s.rounds} x ${s.duration} s):`,
    'pairs/s, p50/p99 µs of a pair, CPU µs per pair Node+Redis; ceiling raw. Contention: wall ms of',
    `${s.contenders} attempts on one key at once, median (min-max) of ${s['contention-runs']} runs.`,
  ].join('\n');
  const section = { title, rows: tableRows(report).slice(0, -1), notes: report.anomalies };
  printReport(section, o.json ? report : undefined);
  return report.ok ? 0 : 1;
}

let options: Options;
try {
  options = readOptions();
} catch (error) {
  run.log((error as Error).message);
  process.exit(2);
}
const phaseMs = (options.warmup + options.duration) * 1000 + 5250;
const contentionMs = (options['contention-runs'] + 1) * 2000;
run.main(
  () => main(options),
  options.ids.length * (options.rounds * 2 * phaseMs + contentionMs) + 60_000,
);
