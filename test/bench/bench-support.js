'use strict';

/* Helpers shared by the benchmark scripts in this folder. */

const { readFileSync, readdirSync } = require('node:fs');
const { createServer } = require('node:net');
const path = require('node:path');
const { setTimeout: sleep } = require('node:timers/promises');

/** A failure the benchmark explains itself (bad argument, timeout, wrong result): no stack needed. */
class BenchError extends Error {}

function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new BenchError(`${what} took longer than ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

function round(value, digits = 1) {
  return value === null || value === undefined ? null : Number(value.toFixed(digits));
}

/** n, p50, p99, max and mean of a list of numbers (milliseconds, say), rounded to 0.1. */
function latencySummary(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mean = sorted.length ? sorted.reduce((sum, v) => sum + v, 0) / sorted.length : null;
  return {
    n: sorted.length,
    p50: round(percentile(sorted, 50)),
    p99: round(percentile(sorted, 99)),
    max: round(sorted.length ? sorted[sorted.length - 1] : null),
    mean: round(mean),
  };
}

/** Runs `work(item, index)` over `items` with at most `limit` in flight; answers results in order. */
async function mapLimit(items, limit, work) {
  const results = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next;
      next += 1;
      results[index] = await work(items[index], index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

// ---------------------------------------------------------------------------------------------
// CPU accounting from /proc (Linux; elsewhere the readers answer null and the sampler stays empty)

/** USER_HZ of /proc/stat and /proc/<pid>/stat: 100 on every Linux build that matters. */
const CLOCK_TICKS = 100;

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

/** Seconds since boot (/proc/uptime); null elsewhere. */
function uptimeSeconds() {
  try {
    return Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]);
  } catch {
    return null;
  }
}

/**
 * One process's CPU so far (user + system of all its threads) and when it started, from
 * /proc/<pid>/stat; null once it is gone (or off Linux).
 */
function processStat(pid) {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const close = text.lastIndexOf(')');
    const comm = text.slice(text.indexOf('(') + 1, close);
    // Fields after "pid (comm) ": state is field 3, utime 14, stime 15, starttime 22.
    const fields = text.slice(close + 2).split(' ');
    return {
      pid: Number(pid),
      comm,
      cpuSeconds: (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS,
      startedAtUptime: Number(fields[19]) / CLOCK_TICKS,
    };
  } catch {
    return null;
  }
}

/** Every process of the machine as `processStat` sees it. */
function allProcesses() {
  let names;
  try {
    names = readdirSync('/proc');
  } catch {
    return [];
  }
  return names
    .filter((name) => /^\d+$/.test(name))
    .map(processStat)
    .filter(Boolean);
}

/**
 * Splits the CPU used during a window between groups of processes. `classify(process)` names the
 * group of a process (or null: not ours, counted under "other processes" with the rest of the
 * machine); `prepare()` (optional, async) runs before each sample, e.g. to learn which PostgreSQL
 * backend serves which database. A process first seen after the window opened counts from its
 * start; one that exits between two samples loses its last interval (at most `intervalMs`).
 */
class CpuSampler {
  constructor({ classify, prepare = async () => undefined, intervalMs = 1000 }) {
    this.classify = classify;
    this.prepare = prepare;
    this.intervalMs = intervalMs;
    this.seen = new Map();
    this.samples = 0;
    this.loop = null;
    this.stopped = false;
  }

  async start() {
    this.startedAt = performance.now();
    this.startUptime = uptimeSeconds();
    this.machineStart = machineBusySeconds();
    await this.sample(true);
    this.loop = (async () => {
      while (!this.stopped) {
        await sleep(this.intervalMs);
        if (!this.stopped) await this.sample(false).catch(() => undefined);
      }
    })();
  }

  async sample(first) {
    await this.prepare();
    for (const proc of allProcesses()) {
      const group = this.classify(proc);
      const known = this.seen.get(proc.pid);
      if (known && known.startedAtUptime === proc.startedAtUptime) {
        known.last = proc.cpuSeconds;
        if (group) known.group = group;
        continue;
      }
      if (!group) continue;
      const bornInside =
        !first && this.startUptime !== null && proc.startedAtUptime >= this.startUptime;
      this.seen.set(proc.pid, {
        group,
        startedAtUptime: proc.startedAtUptime,
        first: bornInside ? 0 : proc.cpuSeconds,
        last: proc.cpuSeconds,
      });
    }
    this.samples += 1;
  }

  /** Takes the last sample and answers CPU seconds and cores (seconds per second) per group. */
  async stop() {
    this.stopped = true;
    await this.loop;
    await this.sample(false).catch(() => undefined);
    const elapsed = (performance.now() - this.startedAt) / 1000;
    const machineEnd = machineBusySeconds();
    const groups = {};
    for (const entry of this.seen.values()) {
      groups[entry.group] ??= { cpuSeconds: 0, processes: 0 };
      groups[entry.group].cpuSeconds += Math.max(0, entry.last - entry.first);
      groups[entry.group].processes += 1;
    }
    let ours = 0;
    for (const group of Object.values(groups)) {
      ours += group.cpuSeconds;
      group.cores = round(group.cpuSeconds / elapsed, 2);
      group.cpuSeconds = round(group.cpuSeconds, 2);
    }
    const busy =
      this.machineStart === null || machineEnd === null ? null : machineEnd - this.machineStart;
    return {
      elapsedSeconds: round(elapsed, 2),
      samples: this.samples,
      groups,
      machineCores: busy === null ? null : round(busy / elapsed, 2),
      otherCores: busy === null ? null : round(Math.max(0, busy - ours) / elapsed, 2),
    };
  }
}

// ---------------------------------------------------------------------------------------------
// Process tree and memory (Linux /proc; elsewhere empty answers)

/** Parent pid of every process of the machine, from /proc/<pid>/stat. */
function parentPids() {
  const parents = new Map();
  let names;
  try {
    names = readdirSync('/proc');
  } catch {
    return parents;
  }
  for (const name of names) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const text = readFileSync(`/proc/${name}/stat`, 'utf8');
      // Field 4 (ppid) is the second one after "pid (comm) ".
      parents.set(Number(name), Number(text.slice(text.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // gone meanwhile
    }
  }
  return parents;
}

/** Every process below `root` (children, grandchildren, ...), not `root` itself. */
function descendantPids(root = process.pid) {
  const children = new Map();
  for (const [pid, ppid] of parentPids()) {
    if (!children.has(ppid)) children.set(ppid, []);
    children.get(ppid).push(pid);
  }
  const found = new Set();
  const queue = [...(children.get(root) || [])];
  while (queue.length > 0) {
    const pid = queue.pop();
    if (found.has(pid)) continue;
    found.add(pid);
    queue.push(...(children.get(pid) || []));
  }
  return found;
}

/** A process's command line (arguments joined by spaces); null once it is gone. */
function commandLine(pid) {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
  } catch {
    return null;
  }
}

/**
 * A process's resident memory in MiB from /proc/<pid>/status: `rss` now (VmRSS) and `peak`, the
 * high-water mark since it started (VmHWM); null once it is gone.
 */
function memoryStatus(pid) {
  try {
    const text = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kib = (field) => {
      const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text);
      return match ? Number(match[1]) / 1024 : null;
    };
    return { rss: kib('VmRSS'), peak: kib('VmHWM') };
  } catch {
    return null;
  }
}

/**
 * The name of a benchmark database: `name` itself, or, with BENCH_DATABASE_PREFIX set (the suite,
 * test/bench/all.bench.js, sets it), `name` with its leading `seatlock_bench` replaced by that
 * prefix, so that a run of the suite never touches the databases of a stand-alone run.
 */
function benchDatabaseName(name) {
  const prefix = process.env.BENCH_DATABASE_PREFIX;
  if (!prefix) return name;
  if (!/^[a-z_][a-z0-9_]{0,40}$/.test(prefix)) {
    throw new BenchError(
      `BENCH_DATABASE_PREFIX must be a lower-case SQL identifier, got ${prefix}`,
    );
  }
  return name.replace(/^seatlock_bench/, prefix);
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]', '::1']);

/** Benchmarks drop and create databases: only on this machine. Answers `url` with 127.0.0.1. */
function requireLoopback(url, variable) {
  if (!LOOPBACK.has(url.hostname)) {
    throw new BenchError(`${variable} must point at this machine (127.0.0.1), got ${url.host}`);
  }
  if (url.hostname === 'localhost') url.hostname = '127.0.0.1';
  return url;
}

/**
 * The node options `npm start` gives the API (its heap cap), read from package.json's start script,
 * so that every benchmark measures the process production runs.
 */
function apiNodeOptions() {
  const packageJson = path.join(__dirname, '..', '..', 'package.json');
  const start = JSON.parse(readFileSync(packageJson, 'utf8')).scripts.start;
  const words = start.split(' ');
  if (words[0] !== 'node' || !words.at(-1).endsWith('main.js')) {
    throw new BenchError(`package.json start: expected "node [options] …/main.js", got "${start}"`);
  }
  return words.slice(1, -1);
}

/** Counter by counter, `after` minus `before`. */
function subtract(after, before) {
  return Object.fromEntries(Object.keys(after).map((key) => [key, after[key] - before[key]]));
}

const DEFAULT_DATABASE_URL = 'postgres://postgres:postgres@127.0.0.1:5432/seatlock';

/**
 * DATABASE_URL's server (this machine only) with each of `databases` (key -> name) as its own URL,
 * plus `admin` (the `postgres` database) and `base`.
 */
function localDatabaseUrls(databases) {
  const base = requireLoopback(
    new URL(process.env.DATABASE_URL || DEFAULT_DATABASE_URL),
    'DATABASE_URL',
  );
  const named = (name) => {
    const url = new URL(base);
    url.pathname = `/${name}`;
    return url.toString();
  };
  const urls = { base: base.toString(), admin: named('postgres') };
  for (const [key, name] of Object.entries(databases)) urls[key] = named(name);
  return urls;
}

/** REDIS_URL (this machine only), default the local server. */
function localRedisUrl() {
  return requireLoopback(
    new URL(process.env.REDIS_URL || 'redis://127.0.0.1:6379'),
    'REDIS_URL',
  ).toString();
}

/** Fails with a clear message unless Redis at `url` answers a PING within 3 s. */
async function requireRedis(url) {
  const { Redis } = require('ioredis');
  const probe = new Redis(url, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    connectTimeout: 3_000,
  });
  try {
    await probe.connect();
    await probe.ping();
  } catch (error) {
    throw new BenchError(`Redis at ${url} does not answer (${error.message})`);
  } finally {
    probe.disconnect();
  }
}

module.exports = {
  requireLoopback,
  localDatabaseUrls,
  localRedisUrl,
  requireRedis,
  subtract,
  apiNodeOptions,
  BenchError,
  CLOCK_TICKS,
  CpuSampler,
  allProcesses,
  benchDatabaseName,
  commandLine,
  descendantPids,
  freePort,
  latencySummary,
  machineBusySeconds,
  mapLimit,
  memoryStatus,
  parentPids,
  percentile,
  processStat,
  round,
  uptimeSeconds,
  withTimeout,
};
