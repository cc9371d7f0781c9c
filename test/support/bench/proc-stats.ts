import { readFileSync, readdirSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { round } from './stats';

/*
 * CPU, process tree and memory from Linux /proc; elsewhere the readers answer null or nothing and
 * the sampler stays empty.
 */

/** USER_HZ of /proc/stat and /proc/<pid>/stat: 100 on every Linux build that matters. */
export const CLOCK_TICKS = 100;

export interface ProcessStat {
  pid: number;
  comm: string;
  cpuSeconds: number;
  startedAtUptime: number;
}

/** Busy CPU seconds of the whole machine (all processes), from /proc/stat; null elsewhere. */
export function machineBusySeconds(): number | null {
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
export function uptimeSeconds(): number | null {
  try {
    return Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]);
  } catch {
    return null;
  }
}

/** One process's CPU so far (all its threads) and its start time; null once it is gone. */
export function processStat(pid: number): ProcessStat | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const close = text.lastIndexOf(')');
    // Fields after "pid (comm) ": utime is field 14, stime 15, starttime 22.
    const fields = text.slice(close + 2).split(' ');
    return {
      pid,
      comm: text.slice(text.indexOf('(') + 1, close),
      cpuSeconds: (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS,
      startedAtUptime: Number(fields[19]) / CLOCK_TICKS,
    };
  } catch {
    return null;
  }
}

function pids(): number[] {
  try {
    return readdirSync('/proc')
      .filter((name) => /^\d+$/.test(name))
      .map(Number);
  } catch {
    return [];
  }
}

export function allProcesses(): ProcessStat[] {
  return pids()
    .map(processStat)
    .filter((stat): stat is ProcessStat => stat !== null);
}

/** Every process below `root` (children, grandchildren, ...), not `root` itself. */
export function descendantPids(root = process.pid): Set<number> {
  const children = new Map<number, number[]>();
  for (const pid of pids()) {
    try {
      const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const ppid = Number(text.slice(text.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), pid]);
    } catch {
      // gone meanwhile
    }
  }
  const found = new Set<number>();
  const queue = [...(children.get(root) ?? [])];
  while (queue.length > 0) {
    const pid = queue.pop() as number;
    if (found.has(pid)) continue;
    found.add(pid);
    queue.push(...(children.get(pid) ?? []));
  }
  return found;
}

/** A process's command line (arguments joined by spaces); null once it is gone. */
export function commandLine(pid: number): string | null {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
  } catch {
    return null;
  }
}

/** Resident memory in MiB: `rss` now (VmRSS) and `peak` since start (VmHWM); null once gone. */
export function memoryStatus(pid: number): { rss: number | null; peak: number | null } | null {
  try {
    const text = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kib = (field: string): number | null => {
      const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text);
      return match ? Number(match[1]) / 1024 : null;
    };
    return { rss: kib('VmRSS'), peak: kib('VmHWM') };
  } catch {
    return null;
  }
}

export interface CpuGroup {
  cpuSeconds: number | null;
  cores: number | null;
  processes: number;
}

export interface CpuReport {
  elapsedSeconds: number | null;
  samples: number;
  groups: Record<string, CpuGroup>;
  machineCores: number | null;
  otherCores: number | null;
}

interface Seen {
  group: string;
  startedAtUptime: number;
  first: number;
  last: number;
}

/**
 * Splits the CPU used during a window between groups of processes. `classify` names the group of
 * a process, or null: not ours, counted under "other processes" with the rest of the machine.
 * `prepare` runs before each sample (e.g. to learn which PostgreSQL backend serves which database).
 * A process born inside the window counts from its start; one that exits between two samples loses
 * its last interval (at most `intervalMs`).
 */
export class CpuSampler {
  private readonly seen = new Map<number, Seen>();
  private samples = 0;
  private loop: Promise<void> | null = null;
  private stopped = false;
  private startedAt = 0;
  private startUptime: number | null = null;
  private machineStart: number | null = null;

  constructor(
    private readonly classify: (proc: ProcessStat) => string | null,
    private readonly prepare: () => Promise<void> = async () => undefined,
    private readonly intervalMs = 1000,
  ) {}

  async start(): Promise<void> {
    this.startedAt = performance.now();
    this.startUptime = uptimeSeconds();
    this.machineStart = machineBusySeconds();
    await this.sample(true);
    this.loop = (async () => {
      while (!this.stopped) {
        await sleep(this.intervalMs, undefined, { ref: false });
        if (!this.stopped) await this.sample(false).catch(() => undefined);
      }
    })();
  }

  private async sample(first: boolean): Promise<void> {
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
  async stop(): Promise<CpuReport> {
    this.stopped = true;
    await this.loop;
    await this.sample(false).catch(() => undefined);
    const elapsed = (performance.now() - this.startedAt) / 1000;
    const machineEnd = machineBusySeconds();
    const sums: Record<string, { cpuSeconds: number; processes: number }> = {};
    for (const entry of this.seen.values()) {
      sums[entry.group] ??= { cpuSeconds: 0, processes: 0 };
      sums[entry.group].cpuSeconds += Math.max(0, entry.last - entry.first);
      sums[entry.group].processes += 1;
    }
    let ours = 0;
    const groups: Record<string, CpuGroup> = {};
    for (const [name, sum] of Object.entries(sums)) {
      ours += sum.cpuSeconds;
      groups[name] = {
        cpuSeconds: round(sum.cpuSeconds, 2),
        cores: round(sum.cpuSeconds / elapsed, 2),
        processes: sum.processes,
      };
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
