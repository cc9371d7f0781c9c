/*
 * The chaos run's built apps under a supervisor, and `cleanup`: everything the run starts (the
 * apps, PostgreSQL, Redis, the proxy, the receiver, temp dirs) is registered with it and stopped
 * newest first. Only PIDs started here are ever signalled.
 */
import { call } from '../support/bench/bench-http';
import { type Child, ChildProcesses, waitHealthy } from '../support/bench/child-processes';
import { logger, withTimeout } from '../support/bench/cli';

const stamped = logger('chaos');
export const log = (line: string): void =>
  stamped(`${new Date().toISOString().slice(11, 23)} ${line}`);

/** Seconds since the start of the load (`t0` is set when the load starts). */
export const clock = { t0: Date.now(), since: (at = Date.now()) => (at - clock.t0) / 1000 };

type Resource = { stop(): Promise<unknown>; killSync?(): void };
const resources: Resource[] = [];
let shuttingDown = false;

/** Registers `resource` with `cleanup`; answers it. */
export function track<T extends Resource>(resource: T): T {
  resources.push(resource);
  return resource;
}

/** Newest first: gracefully (each bounded) in `stopAll`, the hard way in `killAll` (at exit). */
export const cleanup = {
  async stopAll(): Promise<void> {
    shuttingDown = true;
    for (const resource of [...resources].reverse()) {
      await withTimeout(resource.stop(), 15_000, 'stopping').catch(() => undefined);
    }
    cleanup.killAll();
  },
  killAll(): void {
    shuttingDown = true;
    for (const resource of resources.splice(0).reverse()) {
      try {
        resource.killSync?.();
      } catch {
        // already gone
      }
    }
  },
};

type Exit = { at: number; code: number | null; signal: string | null; tail: string[] };
const children = new ChildProcesses(log, 8_000);
const supervised: Supervised[] = [];
const childrenResource: Resource = {
  stop: () => {
    for (const app of supervised) app.signal('SIGCONT'); // a stopped child sits on its SIGTERM
    return children.stopAll();
  },
  killSync: () => children.killAll(),
};

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
  ) {
    // Registered with the first app, so the apps stop before the servers they use.
    if (supervised.push(this) === 1) track(childrenResource);
  }

  get starts(): number {
    return this.runs.length;
  }

  get alive(): boolean {
    return this.runs.length > 0 && !this.runs[this.runs.length - 1].hasExited;
  }

  /** Starts it and waits until `path` answers 200 (fails at once if it exits meanwhile). */
  async start(path: string, timeoutMs: number): Promise<void> {
    const child = children.node(this.name, this.entry, this.env, this.nodeOptions);
    this.runs.push(child);
    this.expected = false;
    void child.exited.then(({ code, signal }) => {
      if (this.expected || shuttingDown || child !== this.runs[this.runs.length - 1]) return;
      this.unexpectedExits.push({ at: clock.since(), code, signal, tail: [...child.tail] });
      setTimeout(() => {
        if (!shuttingDown && !this.alive) this.start(path, timeoutMs).catch(log);
      }, 1_000).unref();
    });
    await waitHealthy(child, () => call(this.url, 'GET', path, { timeoutMs: 2_000 }), timeoutMs);
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
