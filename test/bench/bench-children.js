'use strict';

/*
 * The child processes of a benchmark (the API, the gateway simulator, redis-server, pgbench, load
 * clients): spawned so that none outlives the benchmark, their pino lines counted by level, and
 * stopped with SIGTERM, then SIGKILL. Each benchmark script keeps one ChildProcesses.
 */

const { spawn } = require('node:child_process');
const readline = require('node:readline');
const { setTimeout: sleep } = require('node:timers/promises');
const { BenchError, withTimeout } = require('./bench-support');

/**
 * Runs in a Node child before its main. Once our end of its stdin closes (the benchmark is gone,
 * however it died, SIGKILL included) the child shuts down instead of squatting its port. On
 * SIGUSR2 it exits at once through process.exit, so that `--cpu-prof` writes its profile (Nest
 * re-raises SIGTERM after its shutdown hooks, and a process killed by a signal writes none).
 */
const ORPHAN_GUARD =
  "process.stdin.on('end', () => process.kill(process.pid, 'SIGTERM')).resume();" +
  "process.on('SIGUSR2', () => process.exit(0));" +
  'require(process.argv[1]);';

const TAIL_LINES = 40;

/** A line of a child's output: `warn`, `error`, `fatal` or `other` (quieter, or not pino). */
function classifyLine(line) {
  let entry;
  try {
    entry = JSON.parse(line);
  } catch {
    return { level: 'other', message: line };
  }
  if (!entry || typeof entry.level !== 'number') return { level: 'other', message: line };
  const level =
    entry.level >= 60
      ? 'fatal'
      : entry.level >= 50
        ? 'error'
        : entry.level >= 40
          ? 'warn'
          : 'other';
  let message = String(entry.msg ?? '');
  if (entry.res && entry.res.statusCode) message += ` [${entry.res.statusCode}]`;
  if (entry.err && entry.err.message) message += ` (${entry.err.message})`;
  return { level, message };
}

function hasExited(proc) {
  return proc.child.exitCode !== null || proc.child.signalCode !== null;
}

class ChildProcesses {
  /** `stopTimeoutMs`: how long a child may take over SIGTERM before SIGKILL. */
  constructor({ cwd, stopTimeoutMs, log }) {
    this.cwd = cwd;
    this.stopTimeoutMs = stopTimeoutMs;
    this.log = log;
    this.running = new Set();
  }

  /** A Node script behind the orphan guard. `env` is its whole environment; `nodeOptions` go first. */
  node(name, entry, env, nodeOptions = []) {
    const child = spawn(process.execPath, [...nodeOptions, '-e', ORPHAN_GUARD, entry], {
      cwd: this.cwd,
      env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    child.stdin.on('error', () => undefined);
    return this.track(name, child);
  }

  /** Any other program (pgbench, redis-server). `env` is its whole environment. */
  command(name, args, env = process.env) {
    const child = spawn(args[0], args.slice(1), {
      cwd: this.cwd,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return this.track(name, child);
  }

  /**
   * Runs a program to its end, killed after `timeoutMs`: answers `{code, signal, output}` once its
   * output is complete. Rejects when it cannot be started.
   */
  async runToEnd(name, args, env, timeoutMs) {
    const proc = this.command(name, args, env);
    const closed = new Promise((resolve, reject) => {
      proc.child.once('close', (code, signal) => resolve({ code, signal }));
      proc.child.once('error', reject);
    });
    const timer = setTimeout(() => proc.child.kill('SIGKILL'), timeoutMs);
    try {
      const { code, signal } = await closed;
      return { code, signal, output: proc.output };
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Follows a child: its whole output, the last lines (for errors), and its pino lines counted by
   * level and, from `warn` up, by message.
   */
  track(name, child) {
    const proc = {
      name,
      child,
      output: '',
      tail: [],
      levels: { warn: 0, error: 0, fatal: 0, other: 0 },
      messages: new Map(),
      exited: new Promise((resolve) =>
        child.once('exit', (code, signal) => resolve({ code, signal })),
      ),
    };
    this.running.add(proc);
    void proc.exited.then(() => this.running.delete(proc));
    child.once('error', (error) => {
      proc.tail.push(`spawn failed: ${error.message}`);
      this.running.delete(proc);
    });
    for (const stream of [child.stdout, child.stderr]) {
      readline.createInterface({ input: stream }).on('line', (line) => {
        proc.output += `${line}\n`;
        proc.tail.push(line);
        if (proc.tail.length > TAIL_LINES) proc.tail.shift();
        const { level, message } = classifyLine(line);
        proc.levels[level] += 1;
        if (level === 'other') return;
        const key = `${level}: ${message.slice(0, 200)}`;
        proc.messages.set(key, (proc.messages.get(key) || 0) + 1);
      });
    }
    return proc;
  }

  async stop(proc, signal = 'SIGTERM') {
    if (hasExited(proc)) return proc.exited;
    proc.child.kill(signal);
    const stopped = await Promise.race([proc.exited, sleep(this.stopTimeoutMs).then(() => null)]);
    if (stopped) return stopped;
    this.log(`${proc.name} ignored ${signal} for ${this.stopTimeoutMs} ms; sending SIGKILL`);
    proc.child.kill('SIGKILL');
    return Promise.race([
      proc.exited,
      sleep(5_000).then(() => ({ code: null, signal: 'SIGKILL' })),
    ]);
  }

  async stopAll() {
    await Promise.all([...this.running].map((proc) => this.stop(proc).catch(() => undefined)));
  }

  /** For a process 'exit' handler: nothing asynchronous runs there. */
  killAll() {
    for (const proc of this.running) if (!hasExited(proc)) proc.child.kill('SIGKILL');
  }
}

/**
 * Polls `probe` (an HTTP answer `{status, body, text}`) every 100 ms until it answers 200, and
 * answers its body. Fails at once, with the child's last lines, if the child exits meanwhile.
 */
async function waitHealthy(proc, probe, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer yet';
  while (Date.now() < deadline) {
    if (hasExited(proc)) {
      throw new BenchError(
        `${proc.name} exited during start-up (code ${proc.child.exitCode}, signal ` +
          `${proc.child.signalCode}):\n${proc.tail.join('\n')}`,
      );
    }
    try {
      const response = await probe();
      if (response.status === 200) return response.body;
      last = `${response.status} ${response.text}`;
    } catch (error) {
      last = error.message;
    }
    await sleep(100);
  }
  throw new BenchError(`${proc.name} not healthy after ${timeoutMs} ms (${last})`);
}

/** What a child has logged so far, for `logSince`. */
function logSnapshot(proc) {
  return { levels: { ...proc.levels }, messages: new Map(proc.messages) };
}

/** What a child logged since `before`: lines by level, and its 8 most frequent messages. */
function logSince(proc, before) {
  return {
    levels: Object.fromEntries(
      Object.entries(proc.levels).map(([level, n]) => [level, n - (before.levels[level] || 0)]),
    ),
    messages: Object.fromEntries(
      [...proc.messages]
        .map(([message, n]) => [message, n - (before.messages.get(message) || 0)])
        .filter(([, n]) => n > 0)
        .sort((a, b) => b[1] - a[1])
        .slice(0, 8),
    ),
  };
}

/**
 * Runs a benchmark script's `main` (which answers the exit code) so that no child outlives it: on
 * a failure, on SIGINT or SIGTERM, after `totalMs`, and at exit, every child is stopped. On a
 * signal `cleanUp` (dropping the bench databases) runs too. With --json, a failure still ends
 * stdout with one JSON object.
 */
function runBenchmarkMain({ benchmark, main, children, log, totalMs, cleanUp = async () => {} }) {
  const watchdog = setTimeout(() => {
    log(`gave up after ${totalMs / 1000} s`);
    void children.stopAll().finally(() => process.exit(1));
  }, totalMs);
  watchdog.unref();
  for (const signal of ['SIGINT', 'SIGTERM']) {
    process.once(signal, () => {
      log(`${signal}: stopping the children and cleaning up`);
      void children
        .stopAll()
        .then(() => withTimeout(cleanUp(), 10_000, 'cleaning up'))
        .catch(() => undefined)
        .finally(() => process.exit(130));
    });
  }
  process.on('exit', () => children.killAll());
  main().then(
    (code) => {
      process.exitCode = code;
    },
    async (error) => {
      log(error instanceof BenchError ? error.message : error.stack || String(error));
      await children.stopAll();
      if (process.argv.includes('--json')) {
        process.stdout.write(`${JSON.stringify({ benchmark, ok: false, error: error.message })}\n`);
      }
      process.exitCode = 1;
    },
  );
}

module.exports = {
  ChildProcesses,
  runBenchmarkMain,
  ORPHAN_GUARD,
  classifyLine,
  hasExited,
  logSince,
  logSnapshot,
  waitHealthy,
};
