import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { Client } from 'pg';
import { BenchError } from './cli';
import type { ChildProcesses } from './child-processes';
import { pingRedis } from '../redis-server';

const DEFAULT_DATABASE_URL = 'postgres://postgres:postgres@127.0.0.1:5432/seatlock';
const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]', '::1']);

/** Benchmarks drop and create databases: only on this machine. Answers `url` with 127.0.0.1. */
function requireLoopback(url: URL, variable: string): URL {
  if (!LOOPBACK.has(url.hostname)) {
    throw new BenchError(`${variable} must point at this machine (127.0.0.1), got ${url.host}`);
  }
  if (url.hostname === 'localhost') url.hostname = '127.0.0.1';
  return url;
}

/**
 * `name`, its leading `seatlock_bench` replaced by BENCH_DATABASE_PREFIX when set (the suite sets
 * it), so that a run of the suite never touches the databases of a stand-alone run.
 */
export function benchDatabaseName(name: string): string {
  const prefix = process.env.BENCH_DATABASE_PREFIX;
  if (!prefix) return name;
  if (!/^[a-z_][a-z0-9_]{0,40}$/.test(prefix)) {
    throw new BenchError(
      `BENCH_DATABASE_PREFIX must be a lower-case SQL identifier, got ${prefix}`,
    );
  }
  return name.replace(/^seatlock_bench/, prefix);
}

/** DATABASE_URL's server (this machine only) with the database `name`. */
export function databaseUrl(name: string): string {
  const url = requireLoopback(
    new URL(process.env.DATABASE_URL || DEFAULT_DATABASE_URL),
    'DATABASE_URL',
  );
  url.pathname = `/${name}`;
  return url.toString();
}

export function localRedisUrl(): string {
  return requireLoopback(new URL(process.env.REDIS_URL || 'redis://127.0.0.1:6379'), 'REDIS_URL')
    .toString()
    .replace(/\/$/, '');
}

export async function requireRedis(url: string): Promise<void> {
  try {
    await pingRedis(url, 3_000);
  } catch (error) {
    throw new BenchError(`Redis at ${url} does not answer (${(error as Error).message})`, {
      cause: error,
    });
  }
}

export async function withClient<T>(url: string, work: (client: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
  // A connection cut by DROP DATABASE WITH (FORCE) fails the query in flight: no crash as well.
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/** The first row of each statement, run in turn on the server's admin database. */
async function adminQuery(statements: string[], params?: unknown[]) {
  return withClient(databaseUrl('postgres'), async (admin) => {
    const rows = [];
    for (const sql of statements) rows.push((await admin.query(sql, params)).rows[0]);
    return rows;
  });
}

export async function recreateDatabase(name: string): Promise<string> {
  if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new BenchError(`bad database name ${name}`);
  await adminQuery([`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`, `CREATE DATABASE ${name}`]);
  return databaseUrl(name);
}

export async function dropDatabase(name: string): Promise<void> {
  await adminQuery([`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`]);
}

/** Committed and rolled-back transactions of one database so far. */
export async function transactionCount(name: string): Promise<number> {
  const [row] = await adminQuery(
    [`SELECT (xact_commit + xact_rollback)::bigint AS n FROM pg_stat_database WHERE datname = $1`],
    [name],
  );
  return Number(row?.n ?? 0);
}

/** Client connections the server still accepts: a shared server may not have 64 to spare. */
export async function availableConnections(): Promise<number> {
  const [row] = await adminQuery([
    `SELECT current_setting('max_connections')::int
            - current_setting('superuser_reserved_connections')::int
            - (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')::int
            AS free`,
  ]);
  return Number(row.free);
}

/** Debian's pgbench, else the first on PATH; null when there is none. */
export function findPgbench(): string | null {
  const onPath = (process.env.PATH ?? '').split(delimiter).filter(Boolean);
  const candidates = ['/usr/lib/postgresql/15/bin/pgbench', '/usr/bin/pgbench'].concat(
    onPath.map((dir) => join(dir, 'pgbench')),
  );
  return candidates.find((candidate) => existsSync(candidate)) ?? null;
}

export interface PgbenchResult {
  clients: number;
  tps: number | null;
  processed: number | null;
  failed: number | null;
  latencyAverageMs: number | null;
}

function parsePgbench(output: string, clients: number): PgbenchResult {
  const number = (pattern: RegExp): number | null => {
    const match = pattern.exec(output);
    return match ? Number(match[1]) : null;
  };
  return {
    clients,
    tps: number(/tps = ([0-9.]+) \(without initial connection time\)/),
    processed: number(/number of transactions actually processed: (\d+)/),
    failed: number(/number of failed transactions: (\d+)/),
    latencyAverageMs: number(/latency average = ([0-9.]+) ms/),
  };
}

/**
 * pgbench of one script (extended protocol, as node-postgres speaks it): `clients` for `seconds`,
 * or for `transactions` each when given (a script that consumes prepared rows must not outrun
 * them). Fails when any transaction failed: a ceiling that did not do the work is no ceiling.
 */
export async function runPgbench(
  children: ChildProcesses,
  options: {
    url: string;
    script: string;
    clients: number;
    seconds: number;
    transactions?: number;
    vars?: Record<string, string | number>;
    /** The physical limit of the statement: the schema's triggers (our rules) off for the session. */
    physical?: boolean;
  },
): Promise<PgbenchResult> {
  const pgbench = findPgbench();
  if (!pgbench) throw new BenchError('pgbench not found: apt-get install postgresql-client-15');
  const { clients, seconds, transactions } = options;
  const dir = mkdtempSync(join(tmpdir(), 'seatlock-pgbench-'));
  try {
    const file = join(dir, 'script.sql');
    writeFileSync(file, options.script);
    const args = [
      ...[pgbench, '-n', '-M', 'extended', '-f', file],
      ...['-c', String(clients), '-j', String(Math.min(clients, 4))],
      ...(transactions ? ['-t', String(transactions)] : ['-T', String(seconds)]),
      ...Object.entries(options.vars ?? {}).flatMap(([key, value]) => ['-D', `${key}=${value}`]),
      options.url,
    ];
    const env = options.physical
      ? { ...process.env, PGOPTIONS: '-c session_replication_role=replica' }
      : process.env;
    const run = await children.runToEnd('pgbench', args, env, (seconds + 60) * 1000);
    const result = parsePgbench(run.output, clients);
    if (run.code !== 0 || result.tps === null || (result.failed ?? 0) > 0) {
      throw new BenchError(`pgbench failed (exit ${run.code}):\n${run.output.slice(-2000)}`);
    }
    return result;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * An event with `seats` seats P1, P2, … and `customers` customers whose ids
 * (lpad(to_hex(c + 1), 32, 'c')) pgbench scripts can name, written straight into the database.
 */
export async function preparePgbench(
  url: string,
  options: { seats: number; customers: number; priceCents: number },
): Promise<string> {
  const eventId = randomUUID();
  await withClient(url, async (client) => {
    await client.query(
      `INSERT INTO events (id, name, venue, starts_at, currency, sections, seat_count)
       VALUES ($1, 'pgbench ceiling', 'Bench Arena', '2027-06-01T19:30:00Z', 'EUR', '[]', $2)`,
      [eventId, options.seats],
    );
    await client.query(
      `INSERT INTO seats (event_id, label, section, position, price_cents, row_name, seat_number)
       SELECT $1, 'P' || g, 'Ceiling', g, $3, 'P', g FROM generate_series(1, $2::int) g`,
      [eventId, options.seats, options.priceCents],
    );
    await client.query(
      `INSERT INTO customers (id, email, name, token_hash)
       SELECT lpad(to_hex(c + 1), 32, 'c')::uuid, 'pgbench-' || c || '@example.test',
              'pgbench ' || c, md5('pgbench-a' || c) || md5('pgbench-b' || c)
       FROM generate_series(0, $1::int - 1) c
       ON CONFLICT DO NOTHING`,
      [options.customers],
    );
    await client.query('VACUUM ANALYZE');
  });
  return eventId;
}
