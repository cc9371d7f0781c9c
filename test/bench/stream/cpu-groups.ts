import type { Client } from 'pg';
import * as pg from '../../support/bench/bench-postgres';
import { CpuSampler } from '../../support/bench/proc-stats';

export interface CpuGroups {
  /** The bench database: its backends are one group, PostgreSQL's own processes another. */
  database: string;
  /** The group of this process. */
  self: string;
  /** Groups of other processes, by pid. */
  pids?: Record<number, string>;
  /** Programs counted under their own name (e.g. pgbench), by their process name. */
  programs?: readonly string[];
  /** The group of PostgreSQL's own processes (default 'PostgreSQL: server'). */
  server?: string;
  /** A connection to ask pg_stat_activity on; else one per sample. */
  admin?: Client;
}

type Activity = { pid: number; datname: string | null };
const ACTIVITY = 'SELECT pid, datname FROM pg_stat_activity';

/**
 * CPU by group, every 500 ms: the named processes, this one, the programs, and PostgreSQL's
 * backends of the bench database apart from its server processes; other databases' backends and
 * everything else are "other".
 */
export function groupSampler(groups: CpuGroups): CpuSampler {
  let databases = new Map<number, string>();
  const activity = async (admin: Client) => (await admin.query<Activity>(ACTIVITY)).rows;
  const prepare = async (): Promise<void> => {
    const rows = await (groups.admin
      ? activity(groups.admin)
      : pg.withClient(pg.databaseUrl('postgres'), activity));
    databases = new Map(rows.map((row) => [Number(row.pid), row.datname ?? '']));
  };
  const classify = ({ pid, comm }: { pid: number; comm: string }): string | null => {
    if (groups.pids?.[pid]) return groups.pids[pid];
    if (pid === process.pid) return groups.self;
    if (groups.programs?.includes(comm)) return comm;
    if (comm !== 'postgres') return null;
    const database = databases.get(pid);
    if (database === groups.database) return 'PostgreSQL: bench database';
    return !database || database === 'postgres' ? (groups.server ?? 'PostgreSQL: server') : null;
  };
  return new CpuSampler(classify, prepare, 500);
}
