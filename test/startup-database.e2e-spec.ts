import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import { BuiltApp } from './support/built-app';
import { TEST_ADMIN_TOKEN, testDatabaseUrl, testRedisUrl } from './support/test-env';

/**
 * `npm start` with a DATABASE_URL that names a database that does not exist: created at once (the
 * API starts and migrates it), or, when the role may not create databases, refused within 5 s in
 * one sentence (it used to retry for about 30 s).
 */

function urlFor(database: string, user?: { name: string; password: string }): string {
  const url = new URL(testDatabaseUrl());
  url.pathname = `/${database}`;
  if (user) {
    url.username = user.name;
    url.password = user.password;
  }
  return url.toString();
}

const ENV = {
  REDIS_URL: testRedisUrl(),
  ADMIN_TOKEN: TEST_ADMIN_TOKEN,
  LOG_LEVEL: 'warn',
  MIGRATIONS_RUN: 'true',
  // No simulator of its own: this is about the database.
  GATEWAY_URL: 'http://127.0.0.1:9',
};

describe('start-up with a DATABASE_URL naming a missing database (the built API)', () => {
  let admin: Client;
  const created: string[] = [];
  const role = { name: `seatlock_nocreate_${randomUUID().slice(0, 8)}`, password: 'nocreate' };

  beforeAll(async () => {
    admin = new Client({ connectionString: urlFor('postgres') });
    await admin.connect();
    await admin.query(`CREATE ROLE ${role.name} LOGIN NOCREATEDB PASSWORD '${role.password}'`);
  });

  afterAll(async () => {
    for (const name of created) await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    await admin.query(`DROP ROLE IF EXISTS ${role.name}`);
    await admin.end();
  });

  it('creates it, migrates it and serves', async () => {
    const name = `seatlock_fresh_${randomUUID().slice(0, 8)}`;
    created.push(name);
    const started = performance.now();
    const app = await BuiltApp.start({ ...ENV, DATABASE_URL: urlFor(name) });
    try {
      console.log(`missing database: serving after ${Math.round(performance.now() - started)} ms`);
      expect(app.output).toContain(`Created the database "${name}"`);
      const found = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
      expect(found.rowCount).toBe(1);
      const events = await fetch(`${app.url}/events`);
      expect(events.status).toBe(200);
    } finally {
      await app.stop();
    }
  });

  it('refused in one sentence within 5 s when the role may not create it', async () => {
    const name = `seatlock_never_${randomUUID().slice(0, 8)}`;
    const started = performance.now();
    const failure = await BuiltApp.start({ ...ENV, DATABASE_URL: urlFor(name, role) }).then(
      async (app) => {
        await app.stop();
        return null;
      },
      (error: Error) => error.message,
    );
    const ms = Math.round(performance.now() - started);
    console.log(`missing database, no CREATEDB: exited after ${ms} ms: ${failure}`);
    expect(failure).toContain(
      `The database "${name}" on 127.0.0.1:5432 does not exist and could not be created (permission denied to create database): create it, or point DATABASE_URL at one that exists.`,
    );
    expect(ms).toBeLessThan(5000);
    const found = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    expect(found.rowCount).toBe(0);
  });
});
