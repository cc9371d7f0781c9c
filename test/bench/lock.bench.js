'use strict';

/*
 * Lock benchmark: what one acquire+release pair of our Redis lock provider (libs/lock) costs, next
 * to the least a correct Redis lock needs and next to two published libraries.
 *
 *   npm run bench:lock -- [--json] [--duration S] [--warmup S] [--rounds N] [--inflight N] ...
 *
 * It starts its OWN redis-server on a free port of 127.0.0.1 (no persistence), so the figures do not
 * depend on whatever else uses the shared Redis, and stops it at the end, on errors and on SIGINT.
 *
 * Uncontended: W workers (1, then --inflight, default 64) each loop acquire -> release on their OWN
 * key (`bench:{w<i>}`), so no attempt ever waits for another; pairs completed inside the measured
 * window (after the warm-up) count, and each pair's latency (acquire sent -> release answered) is
 * recorded. Contenders run one at a time, in separate phases, each over its own ioredis connection
 * with the same settings as the provider's (no offline queue, no retries, 1 s command timeout):
 *
 *   raw              SET key owner NX PX ttl, then a compare-and-delete Lua script via EVALSHA: the
 *                    minimum a correct lock needs, so the ceiling for the others;
 *   ours             LockProvider from the BUILT lib (dist/): acquireMany([key], ttl) then release,
 *                    i.e. one script that also mints a fencing token, then one release script;
 *   redlock          redlock v5 (beta) over one client, retryCount 0: acquire([key], ttl), release;
 *   redis-semaphore  Mutex over one client, auto-refresh off: acquire(), release().
 *
 * Every phase is repeated --rounds times, the order of the contenders reversed every other round;
 * the table shows each contender's BEST round (highest pairs/s, with that round's latencies): on a
 * shared machine noise only ever slows a phase down. All rounds are in the JSON. A second table says
 * where the time went: CPU per pair of this Node process (load generator and client library share
 * it) and of redis-server (INFO cpu), and the cores other processes used meanwhile (/proc/stat): a
 * phase where they exceed 0.25 is flagged with `~`. `--diagnose` adds `ours-scripts`: our two Lua
 * scripts over bare ioredis, which splits ours' gap to raw into script cost and JavaScript cost.
 *
 * Contention: --contenders (100) attempts on ONE key, all issued in the same tick, each trying once
 * without waiting; exactly one must win (else the exit code is 1). The winner releases, and the
 * wall time of the attempts is recorded; --contention-runs (20) runs, contenders interleaved, median
 * reported.
 *
 * The goals (ours >= 0.9x raw and >= both libraries, pairs/s at --inflight) are printed MET or
 * MISSED; missing one does not change the exit code, a wrong result or an error does.
 */

const { spawn } = require('node:child_process');
const { randomUUID } = require('node:crypto');
const { existsSync, readFileSync } = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { setTimeout: sleep } = require('node:timers/promises');
const { Redis } = require('ioredis');
const { BenchError, freePort, percentile, round, withTimeout } = require('./bench-support');

const ROOT = path.resolve(__dirname, '..', '..');
const LOCK_LIB = path.join(ROOT, 'dist', 'apps', 'api', 'libs', 'lock', 'src', 'index.js');

/** The provider's own client settings (libs/lock/src/lock.provider.ts), given to every contender. */
const CLIENT_OPTIONS = {
  enableOfflineQueue: false,
  maxRetriesPerRequest: 0,
  commandTimeout: 1000,
  connectTimeout: 2000,
  disconnectTimeout: 200,
  retryStrategy: (attempt) => Math.min(attempt * 200, 2000),
};

/** Compare-and-delete: frees the key only for its owner. */
const RELEASE_LUA = `if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0`;

const CONTENDED_KEY = 'bench:{contended}';
/** The provider's default fence-counter TTL, for the scripts-only diagnostic. */
const FENCE_COUNTER_TTL_MS = 24 * 60 * 60 * 1000;
/** USER_HZ of /proc/stat: 100 on every Linux build that matters. */
const CLOCK_TICKS = 100;
const PAUSE_BETWEEN_PHASES_MS = 250;
/** Cores used by other processes during a phase above which its figures are flagged. */
const BUSY_MACHINE_CORES = 0.25;

const TIMEOUTS = {
  redisStart: 10_000,
  open: 10_000,
  drain: 10_000,
  contentionRun: 10_000,
  stop: 5_000,
};

const USAGE = `Usage: npm run bench:lock -- [options]

  --duration S          measured seconds per phase (default 3)
  --warmup S            warm-up seconds per phase, not measured (default 0.5)
  --rounds N            rounds of all phases; the best round is reported (default 3)
  --inflight N          workers of the concurrent phase, each on its own key (default 64)
  --ttl MS              lease TTL for every contender (default 10000)
  --contenders N        attempts on one key per contention run (default 100)
  --contention-runs N   contention runs per contender; the median is reported (default 20)
  --only LIST           comma-separated subset of raw,ours,redlock,redis-semaphore,ours-scripts
  --diagnose            also run ours-scripts: our Lua scripts over bare ioredis (no provider JS)
  --redis-server PATH   redis-server binary (default: redis-server on PATH)
  --json                also print one JSON object as the last line of stdout

Needs \`npm run build\` first (it requires ${path.relative(ROOT, LOCK_LIB)}).
Starts its own redis-server on a free 127.0.0.1 port; nothing else is touched.`;

// ---------------------------------------------------------------------------------------------
// Small helpers

function log(message) {
  process.stderr.write(`[lock] ${message}\n`);
}

function parseArgs(argv) {
  const options = {
    durationMs: 3000,
    warmupMs: 500,
    rounds: 3,
    inflight: 64,
    ttlMs: 10_000,
    contenders: 100,
    contentionRuns: 20,
    only: null,
    redisServer: 'redis-server',
    diagnose: false,
    json: false,
  };
  const numeric = {
    '--duration': ['durationMs', 0.1, 600, 1000],
    '--warmup': ['warmupMs', 0, 60, 1000],
    '--rounds': ['rounds', 1, 20, 1],
    '--inflight': ['inflight', 1, 1000, 1],
    '--ttl': ['ttlMs', 1000, 600_000, 1],
    '--contenders': ['contenders', 2, 10_000, 1],
    '--contention-runs': ['contentionRuns', 1, 1000, 1],
  };
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i];
    const name = arg.includes('=') ? arg.slice(0, arg.indexOf('=')) : arg;
    const value = () => (arg.includes('=') ? arg.slice(arg.indexOf('=') + 1) : argv[(i += 1)]);
    if (arg === '--json') options.json = true;
    else if (arg === '--diagnose') options.diagnose = true;
    else if (arg === '--help' || arg === '-h') {
      process.stdout.write(`${USAGE}\n`);
      process.exit(0);
    } else if (numeric[name]) {
      const [field, min, max, scale] = numeric[name];
      const text = value();
      const number = Number(text);
      const integer = scale === 1;
      if (text === undefined || !Number.isFinite(number) || number < min || number > max) {
        throw new BenchError(`${name} needs a number from ${min} to ${max}, got ${text}`);
      }
      if (integer && !Number.isInteger(number)) {
        throw new BenchError(`${name} needs an integer, got ${text}`);
      }
      options[field] = Math.round(number * scale);
    } else if (name === '--only') {
      const ids = String(value() ?? '')
        .split(',')
        .map((id) => id.trim())
        .filter(Boolean);
      const unknown = ids.filter((id) => !CONTENDERS.some((contender) => contender.id === id));
      if (ids.length === 0 || unknown.length > 0) {
        throw new BenchError(
          `--only takes a list of ${CONTENDERS.map((c) => c.id).join(',')}, got ${ids.join(',')}`,
        );
      }
      options.only = ids;
    } else if (name === '--redis-server') {
      options.redisServer = value();
      if (!options.redisServer) throw new BenchError('--redis-server needs a path');
    } else {
      throw new BenchError(`unknown argument ${arg}\n${USAGE}`);
    }
  }
  return options;
}

function median(values) {
  return percentile(Float64Array.from(values).sort(), 50);
}

function packageVersion(name) {
  try {
    const file = path.join(ROOT, 'node_modules', name, 'package.json');
    return String(JSON.parse(readFileSync(file, 'utf8')).version).replace(/^v/, '');
  } catch {
    return 'unknown';
  }
}

function errorMessage(error) {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

// ---------------------------------------------------------------------------------------------
// Our own redis-server

let redisChild = null;

function redisExited(child) {
  return child.exitCode !== null || child.signalCode !== null;
}

async function startRedis(binary) {
  let lastProblem = 'no attempt';
  for (let attempt = 1; attempt <= 3; attempt += 1) {
    const port = await freePort();
    const args = [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--dir',
      os.tmpdir(),
    ];
    const child = spawn(binary, args, { stdio: 'ignore' });
    redisChild = child;
    const exited = new Promise((resolve) =>
      child.once('exit', (code, signal) => resolve({ code, signal })),
    );
    child.exited = exited;
    const spawnError = new Promise((resolve) => child.once('error', resolve));
    const url = `redis://127.0.0.1:${port}`;
    const deadline = Date.now() + TIMEOUTS.redisStart;
    while (Date.now() < deadline) {
      const failed = await Promise.race([spawnError, sleep(0).then(() => null)]);
      if (failed) {
        throw new BenchError(
          `cannot start ${binary} (${failed.code || failed.message}): install redis-server or ` +
            'pass --redis-server PATH',
        );
      }
      if (redisExited(child)) break;
      const probe = new Redis(url, {
        lazyConnect: true,
        maxRetriesPerRequest: 0,
        retryStrategy: () => null,
        connectTimeout: 1000,
      });
      probe.on('error', () => undefined);
      try {
        await probe.connect();
        const pong = await probe.ping();
        const info = await probe.info('server');
        probe.disconnect();
        if (pong === 'PONG') {
          const version = /redis_version:(\S+)/.exec(info);
          return { url, port, version: version ? version[1] : 'unknown' };
        }
      } catch (error) {
        lastProblem = error.message;
        probe.disconnect();
      }
      await sleep(50);
    }
    lastProblem = redisExited(child)
      ? `redis-server exited (code ${child.exitCode}, signal ${child.signalCode})`
      : lastProblem;
    await stopRedis();
    log(`redis-server on port ${port} did not come up (${lastProblem}); trying another port`);
  }
  throw new BenchError(`could not start redis-server: ${lastProblem}`);
}

async function stopRedis() {
  const child = redisChild;
  if (!child || redisExited(child)) return;
  child.kill('SIGTERM');
  const stopped = await Promise.race([child.exited, sleep(TIMEOUTS.stop).then(() => null)]);
  if (!stopped && !redisExited(child)) {
    log(`redis-server ignored SIGTERM for ${TIMEOUTS.stop} ms; sending SIGKILL`);
    child.kill('SIGKILL');
    await Promise.race([child.exited, sleep(2000)]);
  }
}

// ---------------------------------------------------------------------------------------------
// Clients and contenders. Each `open` answers { pair(key), attempt(key), releaseWinner(handle),
// lockKey(key), close() }: pair throws unless it took and freed the key; attempt answers a handle
// or null (busy); lockKey names the Redis key the contender stores for `key`.

async function connectClient(url) {
  const client = new Redis(url, { ...CLIENT_OPTIONS, lazyConnect: true });
  // Failures reach the command that hit them; the event itself would only crash the process.
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

async function closeClient(client) {
  try {
    await withTimeout(client.quit(), 2000, 'QUIT');
  } catch {
    client.disconnect();
  }
}

async function openRaw(ctx) {
  const client = await connectClient(ctx.redisUrl);
  const sha = await client.script('LOAD', RELEASE_LUA);
  const attempt = async (key) => {
    const owner = randomUUID();
    const reply = await client.set(key, owner, 'PX', ctx.ttlMs, 'NX');
    return reply === 'OK' ? { key, owner } : null;
  };
  const release = async (handle) => Number(await client.evalsha(sha, 1, handle.key, handle.owner));
  return {
    async pair(key) {
      const handle = await attempt(key);
      if (handle === null) throw new BenchError(`raw: ${key} busy`);
      if ((await release(handle)) !== 1) throw new BenchError(`raw: ${key} not freed`);
    },
    attempt,
    async releaseWinner(handle) {
      if ((await release(handle)) !== 1) throw new BenchError(`raw: ${handle.key} not freed`);
    },
    lockKey: (key) => key,
    close: () => closeClient(client),
  };
}

let lockLib = null;

function loadLockLib() {
  if (lockLib) return lockLib;
  if (!existsSync(LOCK_LIB)) {
    throw new BenchError(
      `${path.relative(ROOT, LOCK_LIB)} is missing: run \`npm run build\` first ` +
        '(or use `npm run bench:lock`, which builds)',
    );
  }
  const lib = require(LOCK_LIB);
  if (typeof lib.LockProvider !== 'function' || typeof lib.LockBusyError !== 'function') {
    throw new BenchError(`${path.relative(ROOT, LOCK_LIB)} exports no LockProvider/LockBusyError`);
  }
  if (typeof lib.LockProvider.prototype.acquireMany !== 'function') {
    throw new BenchError('LockProvider has no acquireMany(keys, ttlMs) any more');
  }
  lockLib = lib;
  return lib;
}

/** The provider connects on construction and offers no "ready" promise: ping until it answers. */
async function waitForProvider(provider) {
  const deadline = Date.now() + TIMEOUTS.open;
  let last = 'no answer yet';
  while (Date.now() < deadline) {
    try {
      await provider.ping();
      return;
    } catch (error) {
      last = error.message;
    }
    await sleep(20);
  }
  throw new BenchError(`LockProvider did not reach Redis (${last})`);
}

async function openOurs(ctx) {
  const { LockProvider, LockBusyError } = loadLockLib();
  const provider = new LockProvider({ mode: 'redis', redisUrl: ctx.redisUrl });
  try {
    await waitForProvider(provider);
  } catch (error) {
    await provider.close().catch(() => undefined);
    throw error;
  }
  let lastFence = -1n;
  return {
    async pair(key) {
      const lease = await provider.acquireMany([key], ctx.ttlMs);
      if (Number(await provider.release(lease)) !== 1)
        throw new BenchError(`ours: ${key} not freed`);
    },
    async attempt(key) {
      try {
        return await provider.acquireMany([key], ctx.ttlMs);
      } catch (error) {
        if (error instanceof LockBusyError) return null;
        throw error;
      }
    },
    async releaseWinner(lease) {
      // Each winner of the one contended key must hold a larger fencing token than the last.
      if (typeof lease.fence !== 'bigint' || lease.fence <= lastFence) {
        throw new BenchError(`ours: fence ${lease.fence} not above the previous ${lastFence}`);
      }
      lastFence = lease.fence;
      if (Number(await provider.release(lease)) !== 1) {
        throw new BenchError(`ours: ${lease.keys.join(',')} not freed`);
      }
    },
    // Keys that carry a hash tag are used as they are, behind the `lock:` prefix.
    lockKey: (key) => `lock:${key}`,
    close: () => provider.close(),
  };
}

/**
 * Diagnostic (--diagnose): our two Lua scripts sent straight through ioredis, without the provider's
 * JavaScript (metrics, circuit breaker, lease objects). ours minus this is the JS layer's cost; this
 * minus raw is the scripts' cost (fence counter, TIME, GET before SET).
 */
async function openOursScripts(ctx) {
  const scriptsFile = path.join(path.dirname(LOCK_LIB), 'lock.scripts.js');
  if (!existsSync(scriptsFile)) throw new BenchError(`${scriptsFile} is missing`);
  const { ACQUIRE_MANY_SCRIPT, RELEASE_SCRIPT } = require(scriptsFile);
  const client = await connectClient(ctx.redisUrl);
  const acquireSha = await client.script('LOAD', ACQUIRE_MANY_SCRIPT);
  const releaseSha = await client.script('LOAD', RELEASE_SCRIPT);
  const fenceTtl = String(Math.max(FENCE_COUNTER_TTL_MS, ctx.ttlMs));
  const attempt = async (key) => {
    const owner = randomUUID();
    const reply = await client.evalsha(
      acquireSha,
      2,
      `lock:${key}`,
      `fence:${key}`,
      owner,
      String(ctx.ttlMs),
      fenceTtl,
    );
    return reply[0] === 1 ? { key, owner, fence: BigInt(reply[1]) } : null;
  };
  const release = async (handle) =>
    Number(await client.evalsha(releaseSha, 1, `lock:${handle.key}`, handle.owner));
  return {
    async pair(key) {
      const handle = await attempt(key);
      if (handle === null) throw new BenchError(`ours-scripts: ${key} busy`);
      if ((await release(handle)) !== 1) throw new BenchError(`ours-scripts: ${key} not freed`);
    },
    attempt,
    async releaseWinner(handle) {
      if ((await release(handle)) !== 1) {
        throw new BenchError(`ours-scripts: ${handle.key} not freed`);
      }
    },
    lockKey: (key) => `lock:${key}`,
    close: () => closeClient(client),
  };
}

async function openRedlock(ctx) {
  const { default: Redlock, ExecutionError } = require('redlock');
  const client = await connectClient(ctx.redisUrl);
  const redlock = new Redlock([client], { retryCount: 0 });
  return {
    async pair(key) {
      const lock = await redlock.acquire([key], ctx.ttlMs);
      await lock.release();
    },
    async attempt(key) {
      try {
        return await redlock.acquire([key], ctx.ttlMs);
      } catch (error) {
        // Busy and unreachable look alike here; an unreachable Redis shows up as no winner.
        if (error instanceof ExecutionError) return null;
        throw error;
      }
    },
    releaseWinner: (lock) => lock.release(),
    lockKey: (key) => key,
    close: () => closeClient(client),
  };
}

async function openSemaphore(ctx) {
  const { Mutex } = require('redis-semaphore');
  const client = await connectClient(ctx.redisUrl);
  // One attempt, no waiting, no auto-refresh: comparable with the others. retryInterval 0 still
  // costs a loser one timer turn: the library sleeps before it checks its attempt limit.
  const mutexOptions = {
    lockTimeout: ctx.ttlMs,
    acquireTimeout: CLIENT_OPTIONS.commandTimeout,
    acquireAttemptsLimit: 1,
    retryInterval: 0,
    refreshInterval: 0,
  };
  return {
    async pair(key) {
      const mutex = new Mutex(client, key, mutexOptions);
      await mutex.acquire();
      await mutex.release();
    },
    async attempt(key) {
      const mutex = new Mutex(client, key, mutexOptions);
      return (await mutex.tryAcquire()) ? mutex : null;
    },
    releaseWinner: (mutex) => mutex.release(),
    lockKey: (key) => `mutex:${key}`,
    close: () => closeClient(client),
  };
}

const CONTENDERS = [
  { id: 'raw', label: 'raw SET NX + CAD', open: openRaw },
  { id: 'ours', label: 'ours (LockProvider)', open: openOurs },
  { id: 'redlock', label: 'redlock', open: openRedlock },
  { id: 'redis-semaphore', label: 'redis-semaphore', open: openSemaphore },
  { id: 'ours-scripts', label: 'ours, scripts only', open: openOursScripts, diagnostic: true },
];

function selected(options) {
  if (options.only) return CONTENDERS.filter((c) => options.only.includes(c.id));
  return CONTENDERS.filter((c) => !c.diagnostic || options.diagnose);
}

async function openContender(contender, ctx) {
  return withTimeout(contender.open(ctx), TIMEOUTS.open, `opening ${contender.id}`);
}

// ---------------------------------------------------------------------------------------------
// Measurements

/** Busy CPU seconds of the whole machine (all processes), from /proc/stat; null elsewhere. */
function machineBusySeconds() {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0];
    const [user, nice, system, , , irq, softirq, steal] = line
      .trim()
      .split(/\s+/)
      .slice(1)
      .map(Number);
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS;
  } catch {
    return null;
  }
}

/** Redis's own CPU seconds (user + sys), from INFO cpu. */
async function redisCpuSeconds(control) {
  const info = await control.info('cpu');
  const field = (name) => Number((new RegExp(`^${name}:([0-9.]+)`, 'm').exec(info) || [])[1]);
  return field('used_cpu_user') + field('used_cpu_sys');
}

function workerKey(index) {
  return `bench:{w${index}}`;
}

/** One phase: `inflight` workers loop acquire -> release on their own keys. */
async function measure(contender, inflight, options, ctx, control) {
  const impl = await openContender(contender, ctx);
  const state = {
    t0: Infinity,
    t1: Infinity,
    stop: false,
    latencies: [],
    errors: 0,
    firstError: '',
  };
  try {
    const worker = async (index) => {
      const key = workerKey(index);
      while (!state.stop) {
        const start = performance.now();
        try {
          await impl.pair(key);
        } catch (error) {
          state.errors += 1;
          if (!state.firstError) state.firstError = errorMessage(error);
          return;
        }
        const end = performance.now();
        if (end >= state.t0 && end < state.t1) state.latencies.push(end - start);
      }
    };
    const workers = Array.from({ length: inflight }, (_, index) => worker(index));
    await sleep(options.warmupMs);
    state.t0 = performance.now();
    const cpu0 = process.cpuUsage();
    const machine0 = machineBusySeconds();
    const redisCpu0 = redisCpuSeconds(control);
    await sleep(options.durationMs);
    state.t1 = performance.now();
    const cpu = process.cpuUsage(cpu0);
    const machine1 = machineBusySeconds();
    const redisCpu1 = redisCpuSeconds(control);
    state.stop = true;
    await withTimeout(Promise.all(workers), TIMEOUTS.drain, `${contender.id} workers to finish`);
    const seconds = (state.t1 - state.t0) / 1000;
    const redisCpuSpent = (await redisCpu1) - (await redisCpu0);
    const left = await control.exists(
      ...Array.from({ length: inflight }, (_, index) => impl.lockKey(workerKey(index))),
    );
    const pairs = state.latencies.length;
    const sorted = Float64Array.from(state.latencies).sort();
    const mean = pairs > 0 ? sorted.reduce((sum, value) => sum + value, 0) / pairs : null;
    const micros = (ms) => (ms === null ? null : round(ms * 1000, 0));
    const nodeCpuSeconds = (cpu.user + cpu.system) / 1e6;
    return {
      inflight,
      pairs,
      seconds: round(seconds, 3),
      pairsPerSec: round(pairs / seconds, 0),
      latencyUs: {
        p50: micros(percentile(sorted, 50)),
        p99: micros(percentile(sorted, 99)),
        max: micros(pairs > 0 ? sorted[pairs - 1] : null),
        mean: micros(mean),
      },
      cpu: {
        nodeCores: round(nodeCpuSeconds / seconds, 2),
        redisCores: round(redisCpuSpent / seconds, 2),
        nodeUsPerPair: pairs > 0 ? round((nodeCpuSeconds * 1e6) / pairs, 1) : null,
        redisUsPerPair: pairs > 0 ? round((redisCpuSpent * 1e6) / pairs, 1) : null,
        // Everything else on the machine meanwhile (other tests, builds): a fair run keeps it near 0.
        otherCores:
          machine0 === null || machine1 === null
            ? null
            : round(
                Math.max(0, (machine1 - machine0 - nodeCpuSeconds - redisCpuSpent) / seconds),
                2,
              ),
      },
      errors: state.errors,
      firstError: state.firstError || null,
      keysLeftHeld: left,
    };
  } finally {
    state.stop = true;
    await impl.close().catch(() => undefined);
  }
}

/** One contention run: `n` single attempts on one key, issued in the same tick. */
async function contend(impl, n, control) {
  const start = performance.now();
  const settled = await Promise.allSettled(
    Array.from({ length: n }, () => impl.attempt(CONTENDED_KEY)),
  );
  const wallMs = performance.now() - start;
  const winners = settled.filter((result) => result.status === 'fulfilled' && result.value);
  const failures = settled.filter((result) => result.status === 'rejected');
  let releaseError = null;
  for (const winner of winners) {
    try {
      await impl.releaseWinner(winner.value);
    } catch (error) {
      releaseError = errorMessage(error);
    }
  }
  const stillHeld = await control.exists(impl.lockKey(CONTENDED_KEY));
  return {
    wallMs,
    winners: winners.length,
    errors: failures.length,
    firstError: failures.length > 0 ? errorMessage(failures[0].reason) : releaseError,
    stillHeld,
  };
}

async function runContention(contenders, options, ctx, control) {
  const opened = [];
  try {
    for (const contender of contenders) {
      opened.push({ contender, impl: await openContender(contender, ctx), runs: [] });
    }
    // One discarded run each: scripts cached, code paths warm.
    for (const entry of opened) {
      await withTimeout(
        contend(entry.impl, options.contenders, control),
        TIMEOUTS.contentionRun,
        `${entry.contender.id} contention warm-up`,
      );
    }
    for (let run = 0; run < options.contentionRuns; run += 1) {
      for (let i = 0; i < opened.length; i += 1) {
        const entry = opened[(i + run) % opened.length];
        entry.runs.push(
          await withTimeout(
            contend(entry.impl, options.contenders, control),
            TIMEOUTS.contentionRun,
            `${entry.contender.id} contention run`,
          ),
        );
      }
    }
  } finally {
    for (const entry of opened) await entry.impl.close().catch(() => undefined);
  }
  const result = {};
  for (const { contender, runs } of opened) {
    const walls = runs.map((run) => run.wallMs);
    const problems = runs.filter((run) => run.winners !== 1 || run.errors > 0 || run.stillHeld);
    result[contender.id] = {
      runs: runs.length,
      wallMs: {
        median: round(median(walls), 2),
        min: round(Math.min(...walls), 2),
        max: round(Math.max(...walls), 2),
      },
      attemptsPerSec: round(options.contenders / (median(walls) / 1000), 0),
      winnersPerRun: [...new Set(runs.map((run) => run.winners))].sort(),
      exactlyOneWinnerEveryRun: runs.every((run) => run.winners === 1),
      errors: runs.reduce((sum, run) => sum + run.errors, 0),
      firstError: (problems.find((run) => run.firstError) || {}).firstError || null,
      keyLeftHeld: runs.some((run) => run.stillHeld),
      allWallMs: walls.map((wall) => round(wall, 2)),
    };
  }
  return result;
}

// ---------------------------------------------------------------------------------------------
// Report

function best(rounds) {
  return rounds.reduce((a, b) => ((b.pairsPerSec ?? 0) > (a.pairsPerSec ?? 0) ? b : a));
}

function goals(uncontended, inflight) {
  const at = (id) => (uncontended[id] ? uncontended[id].concurrent.pairsPerSec : null);
  const ours = at('ours');
  const check = (name, other, factor) => {
    if (ours === null || other === null) return { goal: name, status: 'n/a', ratio: null };
    const ratio = ours / other;
    return {
      goal: name,
      status: ratio >= factor ? 'MET' : 'MISSED',
      ratio: round(ratio, 3),
      needed: factor,
      shortfallPct: ratio >= factor ? 0 : round((1 - ratio / factor) * 100, 1),
    };
  };
  return [
    check(`ours >= 0.9x raw @${inflight}`, at('raw'), 0.9),
    check(`ours >= redlock @${inflight}`, at('redlock'), 1),
    check(`ours >= redis-semaphore @${inflight}`, at('redis-semaphore'), 1),
  ];
}

function table(rows, alignLeft = [0]) {
  const cells = rows.map((row) => row.map(String));
  const widths = cells[0].map((_, i) => Math.max(...cells.map((row) => row[i].length)));
  const line = (row) =>
    row
      .map((cell, i) => (alignLeft.includes(i) ? cell.padEnd(widths[i]) : cell.padStart(widths[i])))
      .join('  ')
      .trimEnd();
  const rule = '-'.repeat(widths.reduce((sum, width) => sum + width, 0) + 2 * (widths.length - 1));
  return [line(cells[0]), rule, ...cells.slice(1).map(line), rule];
}

function printReport(report) {
  const { settings } = report;
  const n = settings.inflight;
  const int = (value) => (value === null ? '-' : Math.round(value).toLocaleString('en-US'));
  const lat = (phase) => `${int(phase.latencyUs.p50)} / ${int(phase.latencyUs.p99)}`;
  const out = [
    '',
    `Lock acquire+release pairs, uncontended (one key per worker), TTL ${settings.ttlMs} ms; best ` +
      `of ${settings.rounds} round(s), ${settings.durationMs / 1000} s each after ` +
      `${settings.warmupMs / 1000} s warm-up; latency of a pair in µs`,
  ];
  const raw = report.uncontended.raw;
  const rows = [
    ['contender', 'pairs/s @1', 'p50/p99 @1', `pairs/s @${n}`, `p50/p99 @${n}`, `vs raw @${n}`],
  ];
  for (const [id, entry] of Object.entries(report.uncontended)) {
    rows.push([
      entry.label,
      int(entry.single.pairsPerSec),
      lat(entry.single),
      int(entry.concurrent.pairsPerSec),
      lat(entry.concurrent),
      raw ? `${entry.ratioToRaw.toFixed(2)}x` : id === 'raw' ? '1.00x' : '-',
    ]);
  }
  out.push(...table(rows));

  out.push('', `Where the time goes @${n} (same best rounds; CPU per pair, cores busy)`);
  const cpuRows = [
    ['contender', 'Node µs/pair', 'Redis µs/pair', 'Node cores', 'Redis cores', 'other cores'],
  ];
  for (const entry of Object.values(report.uncontended)) {
    const cpu = entry.concurrent.cpu;
    cpuRows.push([
      entry.label,
      cpu.nodeUsPerPair,
      cpu.redisUsPerPair,
      cpu.nodeCores,
      cpu.redisCores,
      cpu.otherCores ?? '-',
    ]);
  }
  out.push(...table(cpuRows));

  if (report.contention) {
    out.push(
      '',
      `Contention: ${settings.contenders} single attempts on one key, issued at once; ` +
        `${settings.contentionRuns} runs, wall time of all attempts (ms)`,
    );
    const contentionRows = [['contender', 'median', 'min', 'max', 'winners per run']];
    for (const [id, entry] of Object.entries(report.contention)) {
      contentionRows.push([
        report.uncontended[id] ? report.uncontended[id].label : id,
        entry.wallMs.median.toFixed(2),
        entry.wallMs.min.toFixed(2),
        entry.wallMs.max.toFixed(2),
        entry.exactlyOneWinnerEveryRun ? '1 (every run)' : entry.winnersPerRun.join('/'),
      ]);
    }
    out.push(...table(contentionRows));
  }

  out.push('', 'Goals (pairs/s, best rounds):');
  for (const goal of report.goals) {
    const detail =
      goal.status === 'n/a'
        ? 'not measured'
        : `${goal.ratio.toFixed(2)}x` +
          (goal.status === 'MISSED' ? `, ${goal.shortfallPct} % short of ${goal.needed}x` : '');
    out.push(`  ${goal.status.padEnd(6)}  ${goal.goal}  (${detail})`);
  }
  process.stdout.write(`${out.join('\n')}\n`);
}

/** Other work on the machine during a reported phase: its figures understate. Not a failure. */
function warnings(report) {
  const notes = [];
  for (const [id, entry] of Object.entries(report.uncontended)) {
    for (const phase of [entry.single, entry.concurrent]) {
      if (phase.cpu.otherCores !== null && phase.cpu.otherCores > BUSY_MACHINE_CORES) {
        notes.push(
          `${id} @${phase.inflight}: other processes used ${phase.cpu.otherCores} cores meanwhile; ` +
            'rerun on a quiet machine',
        );
      }
    }
  }
  return notes;
}

function anomalies(report) {
  const notes = [];
  for (const [id, entry] of Object.entries(report.uncontended)) {
    for (const phase of [...entry.rounds.single, ...entry.rounds.concurrent]) {
      if (phase.errors > 0) {
        notes.push(
          `${id} @${phase.inflight}: ${phase.errors} worker(s) failed: ${phase.firstError}`,
        );
      }
      if (phase.keysLeftHeld > 0) {
        notes.push(`${id} @${phase.inflight}: ${phase.keysLeftHeld} key(s) still held afterwards`);
      }
      if (phase.pairs === 0) notes.push(`${id} @${phase.inflight}: no pair completed`);
    }
  }
  for (const [id, entry] of Object.entries(report.contention || {})) {
    if (!entry.exactlyOneWinnerEveryRun) {
      notes.push(
        `${id} contention: winners per run ${entry.winnersPerRun.join('/')}, not always 1`,
      );
    }
    if (entry.errors > 0 || entry.firstError) {
      notes.push(`${id} contention: ${entry.errors} failed attempt(s): ${entry.firstError}`);
    }
    if (entry.keyLeftHeld) notes.push(`${id} contention: key still held after the winner released`);
  }
  return notes;
}

// ---------------------------------------------------------------------------------------------

async function main(options) {
  loadLockLib();
  const contenders = selected(options);
  const loadStart = os.loadavg();
  const redis = await startRedis(options.redisServer);
  log(`redis-server ${redis.version} on 127.0.0.1:${redis.port} (pid ${redisChild.pid})`);
  const ctx = { redisUrl: redis.url, ttlMs: options.ttlMs };
  const control = await connectClient(redis.url);
  try {
    const rounds = Object.fromEntries(
      contenders.map((c) => [c.id, { single: [], concurrent: [] }]),
    );
    for (let r = 0; r < options.rounds; r += 1) {
      const order = r % 2 === 0 ? contenders : [...contenders].reverse();
      for (const contender of order) {
        for (const [slot, inflight] of [
          ['single', 1],
          ['concurrent', options.inflight],
        ]) {
          await sleep(PAUSE_BETWEEN_PHASES_MS);
          const phase = await withTimeout(
            measure(contender, inflight, options, ctx, control),
            options.warmupMs + options.durationMs + TIMEOUTS.open + TIMEOUTS.drain + 5000,
            `${contender.id} @${inflight}`,
          );
          rounds[contender.id][slot].push(phase);
          log(
            `round ${r + 1}/${options.rounds} ${contender.id.padEnd(15)} @${String(inflight).padEnd(
              4,
            )} ${String(phase.pairsPerSec).padStart(7)} pairs/s  p50 ${phase.latencyUs.p50} µs  ` +
              `p99 ${phase.latencyUs.p99} µs${phase.errors ? `  ERRORS ${phase.errors}` : ''}`,
          );
        }
      }
    }
    const uncontended = {};
    for (const contender of contenders) {
      const single = best(rounds[contender.id].single);
      const concurrent = best(rounds[contender.id].concurrent);
      uncontended[contender.id] = {
        label: contender.label,
        single,
        concurrent,
        medianPairsPerSec: {
          single: round(median(rounds[contender.id].single.map((p) => p.pairsPerSec)), 0),
          concurrent: round(median(rounds[contender.id].concurrent.map((p) => p.pairsPerSec)), 0),
        },
        rounds: rounds[contender.id],
      };
    }
    if (uncontended.raw) {
      for (const entry of Object.values(uncontended)) {
        entry.ratioToRaw = round(
          entry.concurrent.pairsPerSec / uncontended.raw.concurrent.pairsPerSec,
          3,
        );
      }
    }

    log(`contention: ${options.contentionRuns} runs of ${options.contenders} attempts on one key`);
    const contention = await runContention(contenders, options, ctx, control);

    const report = {
      benchmark: 'lock',
      date: new Date().toISOString(),
      machine: {
        cpus: os.cpus().length,
        cpuModel: (os.cpus()[0] || {}).model || 'unknown',
        loadavgStart: loadStart.map((value) => round(value, 2)),
        loadavgEnd: os.loadavg().map((value) => round(value, 2)),
        node: process.version,
        redis: redis.version,
      },
      versions: {
        ioredis: packageVersion('ioredis'),
        redlock: packageVersion('redlock'),
        'redis-semaphore': packageVersion('redis-semaphore'),
      },
      settings: {
        durationMs: options.durationMs,
        warmupMs: options.warmupMs,
        rounds: options.rounds,
        reported: 'best round (highest pairs/s) per contender and concurrency',
        inflight: options.inflight,
        ttlMs: options.ttlMs,
        contenders: options.contenders,
        contentionRuns: options.contentionRuns,
        client: { ...CLIENT_OPTIONS, retryStrategy: 'min(attempt * 200, 2000) ms' },
      },
      uncontended,
      contention,
      goals: null,
      anomalies: [],
      warnings: [],
      ok: false,
    };
    report.goals = goals(uncontended, options.inflight);
    report.anomalies = anomalies(report);
    report.warnings = warnings(report);
    report.ok = report.anomalies.length === 0;
    return report;
  } finally {
    await closeClient(control);
    await stopRedis();
  }
}

const options = (() => {
  try {
    return parseArgs(process.argv.slice(2));
  } catch (error) {
    log(error.message);
    process.exit(2);
    return null;
  }
})();

const phases = selected(options).length * options.rounds * 2;
const budgetMs =
  phases * (options.warmupMs + options.durationMs + PAUSE_BETWEEN_PHASES_MS + 5000) +
  (options.contentionRuns + 1) * selected(options).length * 2000 +
  60_000;
const watchdog = setTimeout(() => {
  log(`gave up after ${Math.round(budgetMs / 1000)} s`);
  stopRedis().finally(() => process.exit(1));
}, budgetMs);
watchdog.unref();

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    log(`${signal}: stopping redis-server`);
    stopRedis().finally(() => process.exit(130));
  });
}
process.on('exit', () => {
  if (redisChild && !redisExited(redisChild)) redisChild.kill('SIGKILL');
});

main(options).then(
  (report) => {
    printReport(report);
    for (const note of report.warnings) process.stdout.write(`~ ${note}\n`);
    for (const note of report.anomalies) process.stdout.write(`! ${note}\n`);
    if (options.json) process.stdout.write(`${JSON.stringify(report)}\n`);
    process.exitCode = report.ok ? 0 : 1;
  },
  async (error) => {
    log(error instanceof BenchError ? error.message : error.stack || String(error));
    await stopRedis();
    if (options.json) {
      process.stdout.write(
        `${JSON.stringify({ benchmark: 'lock', ok: false, error: error.message })}\n`,
      );
    }
    process.exitCode = 1;
  },
);
