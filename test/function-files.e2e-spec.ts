import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Client } from 'pg';
import 'reflect-metadata';
import { DataSource } from 'typeorm';
import { FUNCTIONS_DIR, readFunctionFiles } from '../apps/api/src/database/function-files';
import { migrateDatabase } from '../apps/api/src/database/migrate-database';
import { typeormOptions } from '../apps/api/src/database/typeorm-options';
import { BUILT_MAIN, BuiltApp } from './support/built-app';
import { recreateDatabase } from './support/global-setup';
import { fileBodies, liveBodies, ownDatabaseUrl, recordedFiles } from './support/sql-schema';
import { TEST_ADMIN_TOKEN, testRedisUrl } from './support/test-env';

/** The versioned migrations a fresh database runs. */
const MIGRATIONS = (typeormOptions({ url: '' }).migrations as unknown[]).length;

/**
 * The SQL function and trigger files are applied after the versioned migrations whenever their
 * content changed (checksum in schema_functions), and only then; a start-up that would leave two
 * functions of one name keeps nothing; instances starting together take turns.
 */

const URL = ownDatabaseUrl('functions');
const ISO_FILE = '10-seatlock_iso.function.sql';
const UNITS_FILE = '10-seatlock_units_available.function.sql';

function connect(url = URL, poolSize = 2): Promise<DataSource> {
  return new DataSource(typeormOptions({ url, poolSize })).initialize();
}

/** A copy of the files, `edits` applied (file name → its new text from the old). */
function editedFiles(edits: Record<string, (sql: string) => string>): string {
  const dir = join(mkdtempSync(join(tmpdir(), 'seatlock-functions-')), 'functions');
  cpSync(FUNCTIONS_DIR, dir, { recursive: true });
  for (const [file, edit] of Object.entries(edits)) {
    const path = join(dir, file);
    const before = readFileSync(path, 'utf8');
    const after = edit(before);
    if (after === before) throw new Error(`the edit of ${file} changed nothing`);
    writeFileSync(path, after);
  }
  return dir;
}

describe('the SQL function files on a database', () => {
  let dataSource: DataSource;
  let client: Client;
  const copies: string[] = [];

  const iso = async (): Promise<string> =>
    (await client.query<{ iso: string }>(`SELECT seatlock_iso('2030-01-02T03:04:05.678Z') AS iso`))
      .rows[0].iso;

  beforeAll(async () => {
    await recreateDatabase(URL);
    dataSource = await connect();
    client = new Client({ connectionString: URL });
    await client.connect();
  });

  afterAll(async () => {
    await client?.end();
    await dataSource?.destroy();
    for (const dir of copies) rmSync(dirname(dir), { recursive: true, force: true });
  });

  it('a fresh database: the migrations, then every file once, its checksum recorded', async () => {
    const files = readFunctionFiles();
    const outcome = await migrateDatabase(dataSource);
    expect(outcome.migrations).toHaveLength(MIGRATIONS);
    expect(outcome.functions).toEqual(files.map((file) => file.name));
    const recorded = await recordedFiles(client);
    expect(Object.fromEntries(Object.entries(recorded).map(([n, r]) => [n, r.checksum]))).toEqual(
      Object.fromEntries(files.map((file) => [file.name, file.checksum])),
    );
    expect(await liveBodies(client)).toEqual(fileBodies(files));
    expect(await iso()).toBe('2030-01-02T03:04:05.678Z');
    expect(await migrateDatabase(dataSource)).toEqual({ migrations: [], functions: [] });
  });

  it('a changed file is applied at the next start, and only it; unchanged, it is not applied again', async () => {
    const changed = editedFiles({
      [ISO_FILE]: (sql) => sql.replace('SS.MS"Z"', 'SS"Z"'),
    });
    copies.push(changed);
    const before = await recordedFiles(client);

    expect(await migrateDatabase(dataSource, changed)).toEqual({
      migrations: [],
      functions: ['seatlock_iso'],
    });
    expect(await iso()).toBe('2030-01-02T03:04:05Z');
    const after = await recordedFiles(client);
    expect(after.seatlock_iso.checksum).toBe(
      readFunctionFiles(changed).find((file) => file.name === 'seatlock_iso')?.checksum,
    );
    expect(after.seatlock_iso.appliedAt).not.toBe(before.seatlock_iso.appliedAt);
    // Every other row untouched, its applied_at included.
    const others = (rows: typeof after) =>
      Object.entries(rows).filter(([name]) => name !== 'seatlock_iso');
    expect(others(after)).toEqual(others(before));
    expect(others(after)).toHaveLength(readFunctionFiles().length - 1);

    expect(await migrateDatabase(dataSource, changed)).toEqual({ migrations: [], functions: [] });
    expect(await recordedFiles(client)).toEqual(after);

    // Back to the checked-in file: changed again, so applied again.
    expect(await migrateDatabase(dataSource)).toEqual({
      migrations: [],
      functions: ['seatlock_iso'],
    });
    expect(await iso()).toBe('2030-01-02T03:04:05.678Z');
  });

  it('a function or trigger missing from the database is applied again, its file unchanged', async () => {
    await client.query(`DROP TRIGGER payments_event_id ON payments`);
    await client.query(`DROP FUNCTION seatlock_units_available(uuid, text)`);
    expect(await migrateDatabase(dataSource)).toEqual({
      migrations: [],
      functions: ['seatlock_units_available', 'payments_event_id'],
    });
    const { rows } = await client.query(
      `SELECT tgname FROM pg_trigger WHERE tgname = 'payments_event_id'
       UNION ALL SELECT proname FROM pg_proc WHERE proname = 'seatlock_units_available'`,
    );
    expect(rows).toHaveLength(2);
  });

  it('a file whose arguments changed is refused, and nothing of that start is kept', async () => {
    const changed = editedFiles({
      [ISO_FILE]: (sql) =>
        sql.replace('seatlock_iso(t timestamptz)', 'seatlock_iso(t timestamptz, p_zone text)'),
      // Applied in the same transaction: rolled back with the refusal.
      [UNITS_FILE]: (sql) => sql.replace('SELECT count(*)::int', 'SELECT 1 + count(*)::int'),
    });
    copies.push(changed);
    const recorded = await recordedFiles(client);
    const bodies = await liveBodies(client);

    await expect(migrateDatabase(dataSource, changed)).rejects.toThrow(
      "seatlock_iso: more than one function of that name. A file's arguments changed: drop the old signature in a versioned migration",
    );
    const { rows } = await client.query(`SELECT 1 FROM pg_proc WHERE proname = 'seatlock_iso'`);
    expect(rows).toHaveLength(1);
    expect(await liveBodies(client)).toEqual(bodies);
    expect(await recordedFiles(client)).toEqual(recorded);
    // The lock was given back: the next start goes through.
    expect(await migrateDatabase(dataSource)).toEqual({ migrations: [], functions: [] });
  });

  it('instances starting together on a new database take turns: one migrates, the others find it done', async () => {
    const url = ownDatabaseUrl('functions_race');
    await recreateDatabase(url);
    // Pools of one connection: the migration lock and the migrations share it.
    const instances = await Promise.all([1, 2, 3].map(() => connect(url, 1)));
    try {
      const outcomes = await Promise.all(instances.map((instance) => migrateDatabase(instance)));
      const counts = outcomes
        .map((outcome) => [outcome.migrations.length, outcome.functions.length])
        .sort((a, b) => b[0] - a[0]);
      expect(counts).toEqual([
        [MIGRATIONS, readFunctionFiles().length],
        [0, 0],
        [0, 0],
      ]);
    } finally {
      await Promise.all(instances.map((instance) => instance.destroy()));
    }
  });
});

describe('the built API (npm start)', () => {
  it('finds the SQL files in dist and applies them at start-up', async () => {
    const dist = join(dirname(BUILT_MAIN), 'database', 'functions');
    expect(readdirSync(dist).sort()).toEqual(readdirSync(FUNCTIONS_DIR).sort());
    const url = ownDatabaseUrl('functions_built');
    await recreateDatabase(url);
    const app = await BuiltApp.start({
      DATABASE_URL: url,
      REDIS_URL: testRedisUrl(),
      ADMIN_TOKEN: TEST_ADMIN_TOKEN,
      LOG_LEVEL: 'info',
      MIGRATIONS_RUN: 'true',
      GATEWAY_URL: 'http://127.0.0.1:9',
    });
    const client = new Client({ connectionString: url });
    await client.connect();
    try {
      expect(app.output).toContain('SQL functions and triggers applied: seatlock_booking_json');
      const recorded = await recordedFiles(client);
      expect(Object.fromEntries(Object.entries(recorded).map(([n, r]) => [n, r.checksum]))).toEqual(
        Object.fromEntries(readFunctionFiles(dist).map((file) => [file.name, file.checksum])),
      );
      expect(Object.keys(recorded)).toHaveLength(readFunctionFiles().length);
      expect((await fetch(`${app.url}/events`)).status).toBe(200);
    } finally {
      await client.end();
      await app.stop();
    }
  });
});
