import { readFileSync } from 'node:fs';
import { commandLine, descendantPids, machineBusySeconds } from '../../support/bench/proc-stats';

/*
 * Cumulative CPU seconds of the process groups bench:cost reports, read from /proc at any moment
 * (proc-stats' CpuSampler answers one window; here every phase needs several readings). PostgreSQL
 * is the whole server: the postmaster, every process below it, and (cutime + cstime of the
 * postmaster) the CPU of the children it has reaped, so a backend that exited still counts; less
 * the backends of other databases (see CpuReader).
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

/** USER_HZ of /proc/<pid>/stat. */
const CLOCK_TICKS = 100;
/** How often the reader looks between the readings asked for (see CpuReader). */
const TICK_MS = 500;

/** utime + stime (+ cutime + cstime with `reaped`) of one process in seconds; 0 once gone. */
function cpuSeconds(pid: number, reaped = false): number {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return 0;
  }
  // Fields after "pid (comm) ": utime is field 14, stime 15, cutime 16, cstime 17.
  const fields = text
    .slice(text.lastIndexOf(')') + 2)
    .split(' ')
    .map(Number);
  const own = fields[11] + fields[12];
  return (reaped ? own + fields[13] + fields[14] : own) / CLOCK_TICKS;
}

/** A process and everything below it. */
function treeSeconds(root: number): { seconds: number; pids: number[] } {
  const below = [...descendantPids(root)];
  const seconds = below.reduce((sum, pid) => sum + cpuSeconds(pid), cpuSeconds(root));
  return { seconds, pids: [root, ...below] };
}

/** The database of a client backend from its title ("postgres: [15/main: ]user db host(port) state"). */
function backendDatabase(pid: number): string | null {
  const title = commandLine(pid) ?? '';
  const match = /^postgres: (?:\S+: )?\S+ (\S+) (?:\S+\(\d+\)|\[local\])/.exec(title);
  return match ? match[1] : null;
}

export interface CpuReading {
  /** performance.now() of the reading, ms. */
  at: number;
  cpu: CpuTotals;
  /** Live backends of other databases (other helpers, a CI run), left out of PostgreSQL. */
  otherDatabases: number;
  /** Busy CPU seconds of the machine minus our groups and this process's tree. */
  other: number | null;
}

/**
 * Reads the groups' cumulative CPU. PostgreSQL is the server (postmaster with its reaped children,
 * background processes, our databases' backends) without the live backends of other databases on
 * a shared server: each one's CPU as last seen is taken out again once it exits (then the
 * postmaster's cutime holds it), so readings every TICK_MS keep what leaks in small.
 */
export class CpuReader {
  private readonly lastSeen = new Map<number, number>();
  private reapedOthers = 0;
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

  private postgres(): { ours: number; others: number; pids: number[] } {
    let [ours, others] = [cpuSeconds(this.pids.postmaster, true), 0];
    const below = [...descendantPids(this.pids.postmaster)];
    const live = new Set<number>();
    for (const pid of below) {
      const seconds = cpuSeconds(pid);
      const database = this.lastSeen.has(pid) ? '' : backendDatabase(pid);
      if (this.lastSeen.has(pid) || (database !== null && !this.ourDatabases.has(database))) {
        this.lastSeen.set(pid, Math.max(seconds, this.lastSeen.get(pid) ?? 0));
        live.add(pid);
        others += seconds;
      } else {
        ours += seconds;
      }
    }
    for (const [pid, seconds] of this.lastSeen) {
      if (live.has(pid)) continue;
      this.reapedOthers += seconds;
      this.lastSeen.delete(pid);
    }
    return { ours: ours - this.reapedOthers, others: others + this.reapedOthers, pids: below };
  }

  read(): CpuReading {
    const at = performance.now();
    const api = treeSeconds(this.pids.api);
    const gateway = treeSeconds(this.pids.gateway);
    const postgres = this.postgres();
    const redis = this.pids.redis === null ? 0 : cpuSeconds(this.pids.redis);
    const grouped = new Set([...api.pids, ...gateway.pids, ...postgres.pids, this.pids.redis]);
    // This process (the load generator, the receiver) and its other children (pgbench).
    const self = [...descendantPids()]
      .filter((pid) => !grouped.has(pid))
      .reduce((sum, pid) => sum + cpuSeconds(pid), cpuSeconds(process.pid));
    const cpu = {
      API: api.seconds,
      gateway: gateway.seconds,
      PostgreSQL: postgres.ours,
      Redis: redis,
    };
    const busy = machineBusySeconds();
    const ours = Object.values(cpu).reduce((sum, s) => sum + s, 0) + self + postgres.others;
    const other = busy === null ? null : busy - ours;
    return { at, cpu, otherDatabases: postgres.others, other };
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
