/**
 * Where the e2e tests find their services: DATABASE_URL / REDIS_URL when set, else this machine's
 * PostgreSQL and Redis on localhost. The test database's name must contain "test": the suite drops
 * and recreates it, so it refuses anything else.
 */
export const TEST_ADMIN_TOKEN = 'e2e-admin-token-0123456789';

export function testDatabaseUrl(): string {
  const configured = process.env.DATABASE_URL;
  const url = new URL(configured ?? 'postgres://postgres:postgres@127.0.0.1:5432/seatlock_test');
  const name = decodeURIComponent(url.pathname.slice(1));
  if (!name.includes('test')) {
    throw new Error(
      `Refusing to run the e2e tests against database "${name}" (from DATABASE_URL): the suite drops ` +
        `and recreates its database, so the name must contain "test", e.g. ${url.origin.replace(/^[a-z]+:/, 'postgres:')}/seatlock_test`,
    );
  }
  return url.toString();
}

export function testRedisUrl(): string {
  return process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
}
