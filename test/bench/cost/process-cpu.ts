import {
  allProcesses,
  commandLine,
  machineBusySeconds,
  type ProcessStat,
} from '../../support/bench/proc-stats';

/*
 * Cumulative CPU seconds of the process groups bench:cost reports, read from /proc at any moment
 * (proc-stats' CpuSampler answers one window; here every phase needs several readings, and one
 * scan of /proc serves every group). See CpuReader for PostgreSQL.
 */

export const GROUPS = ['API', 'gateway', 'PostgreSQL', 'Redis'] as const;
export type Group = (typeof GROUPS)[number];
export type CpuTotals = Record<Group, number>;

/** The processes measured; `api` changes when the expiry phase starts its own API. */
export interface MeasuredPids {
  api: number;
  gateway: number;
  postmaster: number;
  redis: number | null;
}

/** How often the reader looks between the readings asked for (see CpuReader). */
const TICK_MS = 250;

type Proc = ProcessStat;

/** Every process by pid: one scan of /proc serves every group. */
function scan(): Map<number, Proc> {
  return new Map(allProcesses().map((p) => [p.pid, p]));
}

/** `root` and every process below it (none once it is gone). */
function tree(all: Map<number, Proc>, root: number | null): Proc[] {
  const top = root === null ? undefined : all.get(root);
  if (!top) return [];
  const found = [top];
  for (let i = 0; i < found.length; i += 1) {
    for (const p of all.values()) if (p.ppid === found[i].pid) found.push(p);
  }
  return found;
}

/** The database a PostgreSQL process serves, from its title; null for the server's own. */
function servedDatabase(pid: number): string | null {
  const title = commandLine(pid) ?? '';
  // "postgres: [15/main: ]user db host(port) state", "postgres: [15/main: ]autovacuum worker db"
  const backend = /^postgres: (?:\S+: )?\S+ (\S+) (?:\S+\(\d+\)|\[local\])/.exec(title);
  const autovacuum = /^postgres: (?:\S+: )?autovacuum worker (\S+)/.exec(title);
  return autovacuum?.[1] ?? backend?.[1] ?? null;
}

export interface CpuReading {
  /** performance.now() of the reading, ms. */
  at: number;
  cpu: CpuTotals;
  /** Backends of other databases (other helpers, a CI run), left out of PostgreSQL. */
  otherDatabases: number;
  /** Busy CPU seconds of the machine minus our groups, other databases and this process's tree. */
  other: number | null;
}

type Seen = { cpu: number; started: number; ours: boolean };

/**
 * Reads the groups' cumulative CPU. PostgreSQL: the postmaster and its background processes and
 * every backend of our databases, those that exited included, at the CPU they had when last seen;
 * backends of other databases on a shared server are left out. Not the postmaster's cutime: it
 * would hold every other database's short-lived connections too. Missed: what a backend of ours
 * uses after the last reading before it exits, and a backend of ours that lives under TICK_MS.
 */
export class CpuReader {
  private readonly seen = new Map<number, Seen>();
  private readonly gone = { ours: 0, others: 0 };
  private readonly timer: NodeJS.Timeout;

  constructor(
    readonly pids: MeasuredPids,
    private readonly ourDatabases: ReadonlySet<string>,
  ) {
    this.timer = setInterval(() => this.read(), TICK_MS).unref();
  }

  stop(): Promise<void> {
    clearInterval(this.timer);
    return Promise.resolve();
  }

  /** PostgreSQL's processes now, and those gone since the last look at their last CPU. */
  private postgres(all: Map<number, Proc>) {
    const now = tree(all, this.pids.postmaster);
    const live = new Set<number>();
    const sums = { ...this.gone };
    for (const p of now) {
      let known = this.seen.get(p.pid);
      if (!known || known.started !== p.startedAtUptime) {
        const database = servedDatabase(p.pid);
        known = {
          cpu: 0,
          started: p.startedAtUptime,
          ours: database === null || this.ourDatabases.has(database),
        };
        this.seen.set(p.pid, known);
      }
      known.cpu = p.cpuSeconds;
      live.add(p.pid);
      sums[known.ours ? 'ours' : 'others'] += p.cpuSeconds;
    }
    for (const [pid, known] of this.seen) {
      if (live.has(pid)) continue;
      this.gone[known.ours ? 'ours' : 'others'] += known.cpu;
      sums[known.ours ? 'ours' : 'others'] += known.cpu;
      this.seen.delete(pid);
    }
    return { ...sums, pids: now.map((p) => p.pid) };
  }

  read(): CpuReading {
    const at = performance.now();
    const all = scan();
    const sum = (procs: Proc[]) => procs.reduce((total, p) => total + p.cpuSeconds, 0);
    const [api, gateway] = [tree(all, this.pids.api), tree(all, this.pids.gateway)];
    const postgres = this.postgres(all);
    const redis = this.pids.redis === null ? 0 : (all.get(this.pids.redis)?.cpuSeconds ?? 0);
    const cpu = { API: sum(api), gateway: sum(gateway), PostgreSQL: postgres.ours, Redis: redis };
    // This process (the load generator, the receiver) and its other children (pgbench).
    const grouped = new Set([...api, ...gateway].map((p) => p.pid).concat(postgres.pids));
    if (this.pids.redis !== null) grouped.add(this.pids.redis);
    const self = sum(tree(all, process.pid).filter((p) => !grouped.has(p.pid)));
    const busy = machineBusySeconds();
    const ours = Object.values(cpu).reduce((total, s) => total + s, 0) + self + postgres.others;
    return { at, cpu, otherDatabases: postgres.others, other: busy === null ? null : busy - ours };
  }
}

/** CPU seconds per group between two readings. */
export function cpuBetween(from: CpuReading, to: CpuReading): CpuTotals {
  const out = {} as CpuTotals;
  for (const group of GROUPS) out[group] = Math.max(0, to.cpu[group] - from.cpu[group]);
  return out;
}

/** CPU ms per second per group between two readings. */
export function msPerSecond(from: CpuReading, to: CpuReading): CpuTotals {
  const seconds = Math.max(0.001, (to.at - from.at) / 1000);
  const used = cpuBetween(from, to);
  for (const group of GROUPS) used[group] = (used[group] * 1000) / seconds;
  return used;
}
