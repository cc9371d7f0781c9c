import { readFileSync, readdirSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { round } from './stats';

/* CPU, process tree and memory from Linux /proc; elsewhere the readers answer null or nothing. */

/** USER_HZ of /proc/stat and /proc/<pid>/stat: 100 on every Linux build that matters. */
const CLOCK_TICKS = 100;

export interface ProcessStat {
  pid: number;
  ppid: number;
  comm: string;
  cpuSeconds: number;
  startedAtUptime: number;
}

/** A /proc file, or null (gone meanwhile, or not Linux). */
function readProc(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}

/** Busy CPU seconds of the whole machine (all processes), from /proc/stat. */
export function machineBusySeconds(): number | null {
  const line = readProc('/proc/stat')?.split('\n')[0];
  if (line === undefined) return null;
  const [user, nice, system, , , irq, softirq, steal] = line
    .trim()
    .split(/\s+/)
    .slice(1)
    .map(Number);
  return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS;
}

function uptimeSeconds(): number | null {
  const text = readProc('/proc/uptime');
  return text === null ? null : Number(text.split(' ')[0]);
}

function processStat(pid: number): ProcessStat | null {
  const text = readProc(`/proc/${pid}/stat`);
  if (text === null) return null;
  const close = text.lastIndexOf(')');
  // Fields after "pid (comm) ": ppid is field 4, utime 14, stime 15, starttime 22.
  const fields = text.slice(close + 2).split(' ');
  return {
    pid,
    ppid: Number(fields[1]),
    comm: text.slice(text.indexOf('(') + 1, close),
    cpuSeconds: (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS,
    startedAtUptime: Number(fields[19]) / CLOCK_TICKS,
  };
}

/** Every process now (none where there is no /proc). */
export function allProcesses(): ProcessStat[] {
  let names: string[] = [];
  try {
    names = readdirSync('/proc').filter((name) => /^\d+$/.test(name));
  } catch {
    // not Linux
  }
  return names.map((name) => processStat(Number(name))).filter((stat) => stat !== null);
}

/** Every process below `root` (children, grandchildren, ...), not `root` itself. */
export function descendantPids(root = process.pid): Set<number> {
  const processes = allProcesses();
  const found = new Set<number>();
  for (let parents = new Set([root]); parents.size > 0;) {
    const children = processes.filter((p) => parents.has(p.ppid) && !found.has(p.pid));
    parents = new Set(children.map((p) => p.pid));
    for (const pid of parents) found.add(pid);
  }
  return found;
}

/** A process's command line (arguments joined by spaces); null once it is gone. */
export function commandLine(pid: number): string | null {
  return readProc(`/proc/${pid}/cmdline`)?.split('\0').join(' ').trim() ?? null;
}

/** Resident memory in MiB: `rss` now (VmRSS) and `peak` since start (VmHWM); null once gone. */
export function memoryStatus(pid: number): { rss: number | null; peak: number | null } | null {
  const text = readProc(`/proc/${pid}/status`);
  if (text === null) return null;
  const kib = (field: string): number | null => {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text);
    return match ? Number(match[1]) / 1024 : null;
  };
  return { rss: kib('VmRSS'), peak: kib('VmHWM') };
}

export interface CpuReport {
  elapsedSeconds: number | null;
  samples: number;
  groups: Record<string, { cpuSeconds: number | null; cores: number | null; processes: number }>;
  machineCores: number | null;
  otherCores: number | null;
}

/**
 * Splits the CPU used during a window between groups of processes. `classify` names a process's
 * group, or null: not ours, counted under "other processes" with the rest of the machine.
 * `prepare` runs before each sample (e.g. to learn which PostgreSQL backend serves which database).
 * A process born inside the window counts from its start; one that exits between two samples loses
 * its last interval.
 */
export class CpuSampler {
  private readonly seen = new Map<
    number,
    { group: string; startedAtUptime: number; first: number; last: number }
  >();
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
    const groups: CpuReport['groups'] = {};
    let ours = 0;
    for (const entry of this.seen.values()) {
      const used = Math.max(0, entry.last - entry.first);
      ours += used;
      const group = (groups[entry.group] ??= { cpuSeconds: 0, cores: 0, processes: 0 });
      group.cpuSeconds = (group.cpuSeconds ?? 0) + used;
      group.processes += 1;
    }
    for (const group of Object.values(groups)) {
      group.cores = round((group.cpuSeconds ?? 0) / elapsed, 2);
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
