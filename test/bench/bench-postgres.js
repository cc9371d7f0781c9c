'use strict';

/* PostgreSQL for the benchmarks: short-lived admin connections, and pgbench as the ceiling. */

const { existsSync } = require('node:fs');
const { randomUUID } = require('node:crypto');
const path = require('node:path');
const { Client } = require('pg');

const PGBENCH_CANDIDATES = ['/usr/lib/postgresql/15/bin/pgbench', '/usr/bin/pgbench'];

/** Runs `work` with a connected client and closes it, whatever `work` does. */
async function withClient(connectionString, work) {
  const client = new Client({ connectionString, connectionTimeoutMillis: 5_000 });
  // A connection cut under it (a database dropped WITH (FORCE)) fails the query in flight; the
  // client's 'error' event must not crash the benchmark as well.
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/** `explicit` if it exists; else Debian's pgbench, else the first on PATH; null when there is none. */
function findPgbench(explicit) {
  if (explicit) return existsSync(explicit) ? explicit : null;
  for (const candidate of PGBENCH_CANDIDATES) if (existsSync(candidate)) return candidate;
  for (const dir of (process.env.PATH || '').split(path.delimiter)) {
    const candidate = path.join(dir, 'pgbench');
    if (dir && existsSync(candidate)) return candidate;
  }
  return null;
}

/** The figures of a pgbench report (null where the run printed none). */
function parsePgbench(output) {
  const number = (pattern) => {
    const match = pattern.exec(output);
    return match ? Number(match[1]) : null;
  };
  return {
    tps: number(/tps = ([0-9.]+) \(without initial connection time\)/),
    processed: number(/number of transactions actually processed: (\d+)/),
    failed: number(/number of failed transactions: (\d+)/),
    latencyAverageMs: number(/latency average = ([0-9.]+) ms/),
    aborted: /aborted/i.test(output),
  };
}

/** Client connections the server still accepts: a shared server may not have 64 to spare. */
async function availableConnections(admin) {
  const { rows } = await admin.query(
    `SELECT current_setting('max_connections')::int
            - current_setting('superuser_reserved_connections')::int
            - (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')::int
            AS free`,
  );
  return Number(rows[0].free);
}

/**
 * An event of its own with `clients * seatsPerClient` seats P1, P2, … and one customer per pgbench
 * client (fixed ids, so the scripts can name them), written straight into the API database.
 * Answers the event id.
 */
async function preparePgbench(databaseUrl, { clients, seatsPerClient, priceCents }) {
  const eventId = randomUUID();
  await withClient(databaseUrl, async (client) => {
    await client.query(
      `INSERT INTO events (id, name, venue, starts_at, currency, sections, seat_count)
       VALUES ($1, 'pgbench ceiling', 'Bench Arena', '2027-06-01T19:30:00Z', 'EUR', '[]', $2)`,
      [eventId, clients * seatsPerClient],
    );
    await client.query(
      `INSERT INTO seats (event_id, label, section, position, price_cents)
       SELECT $1, 'P' || g, 'Ceiling', g, $3 FROM generate_series(1, $2::int) g`,
      [eventId, clients * seatsPerClient, priceCents],
    );
    await client.query(
      `INSERT INTO customers (id, email, name, token_hash)
       SELECT lpad(to_hex(c + 1), 32, 'c')::uuid, 'pgbench-' || c || '@example.test',
              'pgbench ' || c, md5('pgbench-a' || c) || md5('pgbench-b' || c)
       FROM generate_series(0, $1::int - 1) c
       ON CONFLICT DO NOTHING`,
      [clients],
    );
    await client.query('VACUUM ANALYZE');
  });
  return eventId;
}

module.exports = {
  preparePgbench,
  PGBENCH_CANDIDATES,
  availableConnections,
  findPgbench,
  parsePgbench,
  withClient,
};
