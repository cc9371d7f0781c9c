/*
 * The chaos run (a BenchRun: everything it starts, the apps, PostgreSQL, Redis, the proxy, the
 * receiver, temp dirs, is stopped at the end, the apps first) and its built apps under a
 * supervisor. Only PIDs started here are ever signalled.
 */
import { BenchRun, waitReady } from '../support/bench/bench-run';
import type { Child } from '../support/bench/child-processes';
import { logger, withTimeout } from '../support/bench/cli';

export const run = new BenchRun('chaos', 8_000);
const stamped = logger('chaos');
export const log = (line: string): void =>
  stamped(`${new Date().toISOString().slice(11, 23)} ${line}`);

/** Seconds since the start of the load (`t0` is set when the load starts). */
export const clock = { t0: Date.now(), since: (at = Date.now()) => (at - clock.t0) / 1000 };

type Exit = { at: number; code: number | null; signal: string | null; tail: string[] };

/**
 * A built app (an API instance, the gateway simulator) behind the orphan guard, with `env` for
 * its whole environment. Like a process supervisor, an exit it did not ask for is recorded with
 * the output's tail and the app started again a second later, so the run and its checks go on.
 */
export class Supervised {
  readonly unexpectedExits: Exit[] = [];
  private readonly runs: Child[] = [];
  private expected = false;

  constructor(
    readonly name: string,
    private readonly entry: string,
    public env: NodeJS.ProcessEnv,
    readonly url: string,
    private readonly nodeOptions: string[] = [],
  ) {}

  get starts(): number {
    return this.runs.length;
  }

  get alive(): boolean {
    return this.runs.length > 0 && !this.runs[this.runs.length - 1].hasExited;
  }

  /** Starts it and waits until `path` answers 200 (fails at once if it exits meanwhile). */
  async start(path: string, timeoutMs: number): Promise<void> {
    const child = run.children.node(this.name, this.entry, this.env, this.nodeOptions);
    child.url = this.url;
    this.runs.push(child);
    this.expected = false;
    void child.exited.then(({ code, signal }) => {
      if (this.expected || run.stopping || child !== this.runs[this.runs.length - 1]) return;
      this.unexpectedExits.push({ at: clock.since(), code, signal, tail: [...child.tail] });
      setTimeout(() => {
        if (!run.stopping && !this.alive) this.start(path, timeoutMs).catch(log);
      }, 1_000).unref();
    });
    await waitReady(child, path, timeoutMs);
  }

  signal(signal: NodeJS.Signals): void {
    if (this.alive) this.runs[this.runs.length - 1].child.kill(signal);
  }

  async kill(): Promise<void> {
    if (!this.alive) return;
    this.expected = true;
    this.signal('SIGCONT');
    this.signal('SIGKILL');
    await withTimeout(this.runs[this.runs.length - 1].exited, 5_000, `${this.name} exiting`);
  }

  /** Its error-level log lines of every run, by message. */
  errorMessages(): [string, number][] {
    const all = this.runs.flatMap((run) => [...run.messages]);
    return all.filter(([message]) => !message.startsWith('warn:'));
  }
}

/** `NAME=value` pairs (whitespace apart) over PATH, HOME, LANG, TMPDIR and TZ: nothing else leaks. */
export function envOf(pairs: string): NodeJS.ProcessEnv {
  const inherited = ['PATH', 'HOME', 'LANG', 'TMPDIR', 'TZ'].filter((name) => process.env[name]);
  const given = pairs.trim().split(/\s+/);
  return Object.fromEntries([
    ...inherited.map((name) => [name, process.env[name]]),
    ...given.map((pair) => pair.split(/=(.*)/s, 2)),
  ]);
}
