import { pingRedis } from './redis-server';
import { Client } from 'pg';
import 'reflect-metadata';
import { DataSource } from 'typeorm';
import { migrateDatabase } from '../../apps/api/src/database/migrate-database';
import { typeormOptions } from '../../apps/api/src/database/typeorm-options';
import { GatewayProcess, GLOBAL_GATEWAY, globalGatewayDatabaseUrl } from './gateway-process';
import { testDatabaseUrl, testRedisUrl } from './test-env';

const HOW_TO_START = {
  postgres:
    'Start PostgreSQL, e.g. `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start` ' +
    'or `docker compose up -d postgres`, or point DATABASE_URL at one (its database name must contain "test").',
  redis:
    'Start Redis, e.g. `redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no` ' +
    'or `docker compose up -d redis`, or point REDIS_URL at one.',
};

/** Drops and recreates the URL's database (connecting to the server's `postgres` database). */
export async function recreateDatabase(url: string): Promise<void> {
  const target = new URL(url);
  const name = decodeURIComponent(target.pathname.slice(1));
  const admin = new URL(url);
  admin.pathname = '/postgres';
  const client = new Client({ connectionString: admin.toString(), connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
  } catch (error) {
    throw new Error(
      `Cannot reach PostgreSQL at ${admin.host} (${(error as Error).message}). ${HOW_TO_START.postgres}`,
      { cause: error },
    );
  }
  try {
    const quoted = `"${name.replace(/"/g, '""')}"`;
    await client.query(`DROP DATABASE IF EXISTS ${quoted} WITH (FORCE)`);
    await client.query(`CREATE DATABASE ${quoted}`);
  } finally {
    await client.end();
  }
}

/** Drops and recreates the test database, then migrates it as the API does at start-up. */
export async function freshDatabase(url: string): Promise<void> {
  await recreateDatabase(url);
  const dataSource = await new DataSource(typeormOptions({ url })).initialize();
  try {
    await migrateDatabase(dataSource);
  } finally {
    await dataSource.destroy();
  }
}

async function checkRedis(url: string): Promise<void> {
  try {
    await pingRedis(url);
  } catch (error) {
    throw new Error(
      `Cannot reach Redis at ${url} (${(error as Error).message}). ${HOW_TO_START.redis}`,
      { cause: error },
    );
  }
}

export default async function globalSetup(): Promise<void> {
  await checkRedis(testRedisUrl());
  await freshDatabase(testDatabaseUrl());
  // One simulator process for the whole run, as in production: its own process and port, and its
  // own database, because simulators sharing one share their work (async authorizations, webhook
  // sends) but not their settings: it would sign and drop the events of the tests' own simulators.
  await recreateDatabase(globalGatewayDatabaseUrl());
  const gateway = await GatewayProcess.start({
    env: { GATEWAY_DATABASE_URL: globalGatewayDatabaseUrl() },
  });
  (globalThis as Record<symbol, unknown>)[GLOBAL_GATEWAY] = gateway;
  // Set before Jest starts its workers, so they inherit it, and so do the built APIs that tests
  // spawn: none of them starts a simulator of its own on the fixed GATEWAY_PORT.
  process.env.GATEWAY_URL = gateway.url;
  // Every test registers its customers from 127.0.0.1, and the count is shared through Redis for an
  // hour: off for the whole run (and the APIs it spawns), on where a test sets it.
  process.env.REGISTRATIONS_PER_IP_PER_HOUR = '0';
}
