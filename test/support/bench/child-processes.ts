import { type ChildProcess, spawn, type StdioOptions } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { BenchError } from './cli';

export const ROOT = resolve(__dirname, '..', '..', '..');
export const API_MAIN = resolve(ROOT, 'dist/apps/api/apps/api/src/main.js');
export const GATEWAY_MAIN = resolve(ROOT, 'dist/apps/gateway-sim/apps/gateway-sim/src/main.js');

/**
 * Runs in a Node child before its main. When its stdin closes (the benchmark died, SIGKILL
 * included) the child shuts down instead of squatting its port. SIGUSR2 exits through
 * process.exit so that `--cpu-prof` writes its profile (a process killed by a signal writes none).
 */
const ORPHAN_GUARD =
  "process.stdin.on('end', () => process.kill(process.pid, 'SIGTERM')).resume();" +
  "process.on('SIGUSR2', () => process.exit(0));" +
  'require(process.argv[1]);';

type Level = 'warn' | 'error' | 'fatal' | 'other';
type Exit = { code: number | null; signal: NodeJS.Signals | null };

/** A pino line's level and message; `other` for quieter or non-pino lines. */
function classifyLine(line: string): { level: Level; message: string } {
  let entry: { level?: unknown; msg?: unknown; res?: { statusCode?: number }; err?: Error };
  try {
    entry = JSON.parse(line);
  } catch {
    return { level: 'other', message: line };
  }
  if (!entry || typeof entry.level !== 'number') return { level: 'other', message: line };
  const n = entry.level;
  const level: Level = n >= 60 ? 'fatal' : n >= 50 ? 'error' : n >= 40 ? 'warn' : 'other';
  let message = String(entry.msg ?? '');
  if (entry.res?.statusCode) message += ` [${entry.res.statusCode}]`;
  if (entry.err?.message) message += ` (${entry.err.message})`;
  return { level, message };
}

export type LogCounts = { levels: Record<Level, number>; messages: Map<string, number> };

/** A child followed by ChildProcesses: its output, its last 40 lines, its log lines by level. */
export class Child {
  output = '';
  readonly tail: string[] = [];
  readonly levels: Record<Level, number> = { warn: 0, error: 0, fatal: 0, other: 0 };
  readonly messages = new Map<string, number>();
  readonly exited: Promise<Exit>;
  url = '';

  constructor(
    readonly name: string,
    readonly child: ChildProcess,
  ) {
    this.exited = new Promise((done) =>
      child.once('exit', (code, signal) => done({ code, signal })),
    );
    for (const stream of [child.stdout, child.stderr]) {
      if (stream) createInterface({ input: stream }).on('line', (line) => this.line(line));
    }
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get hasExited(): boolean {
    return this.child.exitCode !== null || this.child.signalCode !== null;
  }

  private line(line: string): void {
    this.output += `${line}\n`;
    this.tail.push(line);
    if (this.tail.length > 40) this.tail.shift();
    const { level, message } = classifyLine(line);
    this.levels[level] += 1;
    if (level === 'other') return;
    const key = `${level}: ${message.slice(0, 200)}`;
    this.messages.set(key, (this.messages.get(key) ?? 0) + 1);
  }

  snapshot(): LogCounts {
    return { levels: { ...this.levels }, messages: new Map(this.messages) };
  }

  /** What it logged since `before`: lines by level, and its 8 most frequent messages. */
  logSince(before: LogCounts): {
    levels: Record<string, number>;
    messages: Record<string, number>;
  } {
    const levels = Object.fromEntries(
      Object.entries(this.levels).map(([level, n]) => [level, n - before.levels[level as Level]]),
    );
    const messages = Object.fromEntries(
      [...this.messages]
        .map(([message, n]) => [message, n - (before.messages.get(message) ?? 0)] as const)
        .filter(([, n]) => n > 0)
        .sort((a, b) => b[1] - a[1])
        .slice(0, 8),
    );
    return { levels, messages };
  }
}

/** A benchmark's children: none outlives it; stopped with SIGTERM, then SIGKILL. */
export class ChildProcesses {
  private readonly running = new Set<Child>();

  constructor(
    private readonly log: (message: string) => void,
    private readonly stopTimeoutMs = 15_000,
  ) {}

  /** A Node script behind the orphan guard. `env` is its whole environment. */
  node(name: string, entry: string, env: NodeJS.ProcessEnv, nodeOptions: string[] = []): Child {
    const args = [...nodeOptions, '-e', ORPHAN_GUARD, entry];
    const child = spawn(process.execPath, args, { cwd: ROOT, env, stdio: 'pipe' });
    child.stdin?.on('error', () => undefined);
    return this.track(name, child);
  }

  /** Any other program (pgbench, redis-server). `env` is its whole environment. */
  command(name: string, args: string[], env: NodeJS.ProcessEnv = process.env): Child {
    const stdio: StdioOptions = ['ignore', 'pipe', 'pipe'];
    return this.track(name, spawn(args[0], args.slice(1), { cwd: ROOT, env, stdio }));
  }

  /** Runs a program to its end, killed after `timeoutMs`; rejects when it cannot be started. */
  async runToEnd(
    name: string,
    args: string[],
    env: NodeJS.ProcessEnv,
    timeoutMs: number,
  ): Promise<Exit & { output: string }> {
    const proc = this.command(name, args, env);
    const closed = new Promise<Exit>((done, fail) => {
      proc.child.once('close', (code, signal) => done({ code, signal }));
      proc.child.once('error', fail);
    });
    const timer = setTimeout(() => proc.child.kill('SIGKILL'), timeoutMs);
    try {
      return { ...(await closed), output: proc.output };
    } finally {
      clearTimeout(timer);
    }
  }

  private track(name: string, child: ChildProcess): Child {
    const proc = new Child(name, child);
    this.running.add(proc);
    void proc.exited.then(() => this.running.delete(proc));
    child.once('error', (error) => {
      proc.tail.push(`spawn failed: ${error.message}`);
      this.running.delete(proc);
    });
    return proc;
  }

  async stop(proc: Child, signal: NodeJS.Signals = 'SIGTERM') {
    if (proc.hasExited) return proc.exited;
    proc.child.kill(signal);
    proc.child.kill('SIGCONT'); // a stopped (SIGSTOP) child would sit on its signal
    const stopped = await Promise.race([proc.exited, sleep(this.stopTimeoutMs).then(() => null)]);
    if (stopped) return stopped;
    this.log(`${proc.name} ignored ${signal} for ${this.stopTimeoutMs} ms; sending SIGKILL`);
    proc.child.kill('SIGKILL');
    const killed: Exit = { code: null, signal: 'SIGKILL' };
    return Promise.race([proc.exited, sleep(5_000).then(() => killed)]);
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.running].map((proc) => this.stop(proc).catch(() => undefined)));
  }

  /** For a process 'exit' handler: nothing asynchronous runs there. */
  killAll(): void {
    for (const proc of this.running) if (!proc.hasExited) proc.child.kill('SIGKILL');
  }
}

/** Polls `probe` until it answers 200 and answers its body; fails at once if the child exits. */
export async function waitHealthy<T>(
  proc: Child,
  probe: () => Promise<{ status: number; body: T; text: string }>,
  timeoutMs: number,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer yet';
  while (Date.now() < deadline) {
    if (proc.hasExited) {
      const { exitCode, signalCode } = proc.child;
      throw new BenchError(
        `${proc.name} exited during start-up (code ${exitCode}, signal ${signalCode}):\n` +
          proc.tail.join('\n'),
      );
    }
    try {
      const response = await probe();
      if (response.status === 200) return response.body;
      last = `${response.status} ${response.text}`;
    } catch (error) {
      last = (error as Error).message;
    }
    await sleep(100);
  }
  throw new BenchError(`${proc.name} not healthy after ${timeoutMs} ms (${last})`);
}

/** `npm start`'s node options (its heap cap): every benchmark measures what production runs. */
export function apiNodeOptions(): string[] {
  const pkg = JSON.parse(readFileSync(resolve(ROOT, 'package.json'), 'utf8'));
  const words = String(pkg.scripts.start).split(' ');
  if (words[0] !== 'node' || !words[words.length - 1].endsWith('main.js')) {
    throw new BenchError(
      `package.json start: expected "node [options] …/main.js", got "${pkg.scripts.start}"`,
    );
  }
  return words.slice(1, -1);
}

/**
 * Rate limits and the per-customer cap off, warnings only, background jobs once an hour so their
 * queries do not count.
 * No GATEWAY_URL here: a benchmark without payments points it at a closed port.
 */
export function benchApiEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return {
    ...process.env,
    HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
    MIGRATIONS_RUN: 'true',
    RATE_LIMIT_PER_MINUTE: '0',
    REGISTRATIONS_PER_IP_PER_HOUR: '0',
    // A bench's few customers hold thousands of seats of one event: the per-customer cap (20) is off.
    MAX_SEATS_PER_CUSTOMER_PER_EVENT: '10000',
    SWEEP_INTERVAL_MS: '3600000',
    RECONCILE_INTERVAL_MS: '3600000',
    ...env,
  };
}
