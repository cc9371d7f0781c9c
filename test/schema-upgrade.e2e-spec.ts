import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import 'reflect-metadata';
import { DataSource, type MigrationInterface } from 'typeorm';
import { readFunctionFiles } from '../apps/api/src/database/function-files';
import { migrateDatabase } from '../apps/api/src/database/migrate-database';
import { typeormOptions } from '../apps/api/src/database/typeorm-options';
import { recreateDatabase } from './support/global-setup';
import {
  fileBodies,
  liveBodies,
  liveDefinitions,
  ownDatabaseUrl,
  recordedFiles,
} from './support/sql-schema';
import { TestApp } from './support/test-app';

/**
 * A database at main's schema of 1de2a48 (the migrations up to 1765000000000, whose SQL
 * function-files.spec.ts pins) upgrades to the function-file layout without losing or changing a
 * row, and every function and trigger afterwards is exactly what it was, now from its file; the
 * only new ones are those whose files came after the cut (ADDED_SINCE_CUT).
 */

const URL = ownDatabaseUrl('upgrade');
const CUT = 1765000000000;
/** Functions that first came as files, after the cut: absent before the upgrade, added by it. */
const ADDED_SINCE_CUT = ['seatlock_customer_email'];

const MAIN_1DE2A48 = [
  'InitialSchema1763800000000',
  'Payments1763900000000',
  'Notifications1764000000000',
  'NotificationDeliveries1764100000000',
  'OneStatementHold1764200000000',
  'OneStatementPayments1764300000000',
  'OnSaleSeating1764400000000',
  'GeneralAdmission1764500000000',
  'FairUnitClaims1764600000000',
  'ExtendAfterLock1764700000000',
  'SeatStream1764800000000',
  'EventKeys1764900000000',
  'ConfirmNeedsPending1765000000000',
];

/** Every migration written since main 1de2a48, in order: what the upgrade runs. */
function migrationsAfterCut(): string[] {
  return (typeormOptions({ url: URL }).migrations as (new () => MigrationInterface)[])
    .map((Migration) => new Migration().name as string)
    .filter((name) => Number(/(\d+)$/.exec(name)?.[1]) > CUT);
}

/**
 * Functions and triggers a later issue changed on purpose (their files say how); every other one
 * must be exactly what 1de2a48's migrations made it.
 */
const CHANGED_SINCE_1DE2A48 = [
  // Issue 23: the seat stream keeps its section counts and is woken by commits.
  'seatlock_record_seat_changes',
  'seatlock_stream_batch',
];

function migrationsUpToCut(): (new () => MigrationInterface)[] {
  return (typeormOptions({ url: URL }).migrations as (new () => MigrationInterface)[]).filter(
    (Migration) => Number(/(\d+)$/.exec(new Migration().name ?? '')?.[1]) <= CUT,
  );
}

/** The columns of every table of the public schema, in order. */
async function columnsOf(client: Client): Promise<Record<string, string[]>> {
  const { rows } = await client.query<{ name: string; columns: string[] }>(
    `SELECT t.table_name AS name, array_agg(c.column_name::text ORDER BY c.ordinal_position) AS columns
       FROM information_schema.tables t
       JOIN information_schema.columns c USING (table_schema, table_name)
      WHERE t.table_schema = 'public' AND t.table_type = 'BASE TABLE'
      GROUP BY t.table_name ORDER BY t.table_name`,
  );
  return Object.fromEntries(rows.map((row) => [row.name, row.columns]));
}

/**
 * Per table of the public schema: row count and a digest of every row, read through `columns`
 * (by default every column now; the columns a table had before an upgrade, to compare across a
 * migration that adds one).
 */
async function tables(
  client: Client,
  columns?: Record<string, string[]>,
): Promise<Record<string, string>> {
  const now = await columnsOf(client);
  const { rows } = await client.query<Record<string, string>>(
    `SELECT ${Object.keys(now)
      .map((name) => {
        const read = (columns?.[name] ?? now[name]).map((column) => `t."${column}"`).join(', ');
        return `(SELECT count(*) || ' rows, ' ||
                        md5(coalesce(string_agg(ROW(${read})::text, '|' ORDER BY ROW(${read})::text), ''))
                   FROM "${name}" t) AS "${name}"`;
      })
      .join(', ')}`,
  );
  const { rows: sequences } = await client.query<{ name: string; last: string | null }>(
    `SELECT sequencename AS name, last_value::text AS last FROM pg_sequences
      WHERE schemaname = 'public'`,
  );
  return {
    ...rows[0],
    ...Object.fromEntries(sequences.map((s) => [`sequence ${s.name}`, `${s.last}`])),
  };
}

/** Rows in every table, written the way the API writes them: through the live SQL functions. */
async function seed(client: Client): Promise<{ eventId: string; paid: string }> {
  const [c1, c2, eventId] = [randomUUID(), randomUUID(), randomUUID()];
  const [paid, released, extended, units, lapsed, payment] = Array.from({ length: 6 }, () =>
    randomUUID(),
  );
  const one = async (sql: string, params: unknown[]): Promise<Record<string, unknown>> =>
    (await client.query(sql, params)).rows[0] as Record<string, unknown>;

  await client.query(
    `INSERT INTO customers (id, email, name, token_hash)
     VALUES ($1, 'one@upgrade.test', 'One', repeat('a', 64)),
            ($2, 'two@upgrade.test', 'Two', repeat('b', 64))`,
    [c1, c2],
  );
  await client.query(
    `INSERT INTO events (id, name, venue, starts_at, currency, sections, seat_count, orphan_policy)
     VALUES ($1, 'Upgrade night', 'Hall', now() + interval '30 days', 'EUR',
             '[{"name": "Floor"}, {"name": "Standing"}]', 14, 'strict')`,
    [eventId],
  );
  await client.query(
    `INSERT INTO seats (event_id, label, section, position, price_cents, row_name, seat_number)
     SELECT $1::uuid, 'A' || n, 'Floor', n, 5000, 'A', n FROM generate_series(1, 10) n
     UNION ALL
     SELECT $1::uuid, 'GA1-' || n, 'Standing', 10 + n, 2000, NULL, NULL FROM generate_series(1, 4) n`,
    [eventId],
  );
  const hold = (booking: string, customer: string, labels: string[], ttl: number) =>
    one(`SELECT outcome FROM seatlock_hold($1, $2, $3, $4, $5, 'EUR', NULL, $6, true, 6)`, [
      booking,
      customer,
      eventId,
      labels,
      labels.length * 5000,
      ttl,
    ]);
  expect(await hold(paid, c1, ['A1', 'A2'], 600)).toEqual({ outcome: 'held' });
  expect(await hold(released, c2, ['A3', 'A4'], 600)).toEqual({ outcome: 'held' });
  expect(await hold(extended, c2, ['A5', 'A6'], 600)).toEqual({ outcome: 'held' });
  // A hold that lapses at once; the next hold of its seat expires it on the way.
  expect(await hold(lapsed, c1, ['A10'], 0)).toEqual({ outcome: 'held' });
  expect(await hold(randomUUID(), c2, ['A9', 'A10'], 600)).toEqual({ outcome: 'held' });
  expect(
    await one(
      `SELECT outcome FROM seatlock_hold_units($1, $2, $3, 'Standing', 2, 2000, 'EUR', 600, 6)`,
      [units, c1, eventId],
    ),
  ).toEqual({ outcome: 'held' });
  expect(await one(`SELECT outcome FROM seatlock_release($1, $2)`, [released, c2])).toEqual({
    outcome: 'released',
  });
  expect(
    await one(`SELECT outcome FROM seatlock_extend($1, $2, 900, 3600, 3)`, [extended, c2]),
  ).toEqual({ outcome: 'extended' });
  expect(
    await one(
      `SELECT claim FROM seatlock_payment_start($1, $2, 'key-1', repeat('f', 64), 30000, 24, $3,
                                                'pm_card_visa', 'gw-key-1')`,
      [c1, paid, payment],
    ),
  ).toEqual({ claim: 'claimed' });
  expect(
    await one(`SELECT outcome FROM seatlock_payment_confirm($1, 'authorize', 'captured', 'pi_1')`, [
      payment,
    ]),
  ).toEqual({ outcome: 'confirmed' });
  expect(
    await one(`SELECT seatlock_idempotency_complete($1, 'key-1', 201, '{"ok": true}') AS done`, [
      c1,
    ]),
  ).toEqual({ done: true });
  // The stream's drain numbers some changes; the rest stay queued.
  await client.query(`SELECT * FROM seatlock_stream_batch(3)`);
  await client.query(
    `INSERT INTO gateway_events (id, type) VALUES ('evt_upgrade_1', 'payment_intent.succeeded')`,
  );
  await client.query(
    `UPDATE outbox_messages SET status = 'sent', dispatched_at = now(), dispatched_by = 'upgrade'
      WHERE id IN (SELECT id FROM outbox_messages ORDER BY created_at LIMIT 3)`,
  );
  await client.query(
    `INSERT INTO notifications (id, message_id, customer_id, booking_id, type, title, body, created_at)
     SELECT gen_random_uuid(), id, customer_id, aggregate_id, topic, 'Title', 'Body', created_at
       FROM outbox_messages WHERE status = 'sent'`,
  );
  const endpoint = randomUUID();
  await client.query(
    `INSERT INTO webhook_endpoints (id, customer_id, url, events, secret)
     VALUES ($1, $2, 'http://127.0.0.1:9/hook', ARRAY['booking.held'], 'whsec_upgrade')`,
    [endpoint, c1],
  );
  await client.query(
    `INSERT INTO notification_deliveries (id, message_id, channel, target, endpoint_id, attempts)
     SELECT gen_random_uuid(), id, 'webhook', 'http://127.0.0.1:9/hook', $1, 1
       FROM outbox_messages WHERE topic = 'booking.held' AND customer_id = $2`,
    [endpoint, c1],
  );
  await client.query(
    `INSERT INTO delivery_attempts (delivery_id, attempt, status_code, latency_ms, error)
     SELECT id, 1, NULL, 3, 'connect ECONNREFUSED' FROM notification_deliveries`,
  );
  return { eventId, paid };
}

describe('upgrading a database at main 1de2a48 to one file per SQL function', () => {
  let client: Client;
  let before: Record<string, string>;
  let columnsBefore: Record<string, string[]>;
  let definitionsBefore: Record<string, string>;
  let seeded: { eventId: string; paid: string };

  beforeAll(async () => {
    await recreateDatabase(URL);
    const old = await new DataSource({
      ...typeormOptions({ url: URL, poolSize: 2 }),
      migrations: migrationsUpToCut(),
    }).initialize();
    try {
      await old.runMigrations({ transaction: 'each' });
    } finally {
      await old.destroy();
    }
    client = new Client({ connectionString: URL });
    await client.connect();
    seeded = await seed(client);
    before = await tables(client);
    columnsBefore = await columnsOf(client);
    definitionsBefore = await liveDefinitions(client);
  });

  afterAll(async () => {
    await client?.end();
  });

  it('starts from main 1de2a48: its 13 migrations, 21 functions, 3 triggers, rows in every table', async () => {
    expect(migrationsUpToCut().map((Migration) => new Migration().name)).toEqual(MAIN_1DE2A48);
    const { rows } = await client.query<{ name: string }>(
      `SELECT name FROM migrations ORDER BY timestamp`,
    );
    expect(rows.map((row) => row.name)).toEqual(MAIN_1DE2A48);
    expect(Object.keys(definitionsBefore)).toHaveLength(24);
    expect(Object.keys(before)).not.toContain('schema_functions');
    // Every table holds rows, so "no row lost" is not said of empty tables.
    const empty = Object.entries(before).filter(([, digest]) => digest.startsWith('0 rows'));
    expect(empty).toEqual([]);
    console.log(`before the upgrade:\n${JSON.stringify(before, null, 1)}`);
  });

  it('the start-up path runs the new migration and every file once; no row is lost or changed', async () => {
    const dataSource = await new DataSource(typeormOptions({ url: URL, poolSize: 2 })).initialize();
    const files = readFunctionFiles();
    try {
      const outcome = await migrateDatabase(dataSource);
      expect(outcome.migrations).toEqual(migrationsAfterCut());
      expect(outcome.migrations[0]).toBe('SchemaFunctions1765100000000');
      // The first start with the files records each one: all apply (most the same text,
      // and ADDED_SINCE_CUT).
      expect([...outcome.functions].sort()).toEqual(files.map((file) => file.name).sort());

      const after = await tables(client, columnsBefore);
      // Every table and sequence as it was (read through the columns it had), but for the
      // migrations' own bookkeeping and the new table of checksums.
      const unchanged = (all: Record<string, string>) =>
        Object.fromEntries(
          Object.entries(all).filter(
            ([name]) => !/^(sequence )?(migrations|schema_functions)/.test(name),
          ),
        );
      expect(unchanged(after)).toEqual(unchanged(before));
      expect(Object.keys(unchanged(before))).toHaveLength(Object.keys(before).length - 2);
      expect(after.schema_functions).toMatch(new RegExp(`^${files.length} rows, `));
      const { rows } = await client.query<{ name: string }>(
        `SELECT name FROM migrations ORDER BY timestamp`,
      );
      expect(rows.map((row) => row.name)).toEqual([...MAIN_1DE2A48, ...migrationsAfterCut()]);

      // A second start finds nothing to do.
      expect(await migrateDatabase(dataSource)).toEqual({ migrations: [], functions: [] });
      expect(await tables(client, columnsBefore)).toEqual(after);
    } finally {
      await dataSource.destroy();
    }
  });

  it('every function and trigger is what it was, and its body is its file’s, character for character', async () => {
    const files = readFunctionFiles();
    // What was live before the upgrade (from the migrations) = what is live now (from the files),
    // beside the functions added since the cut, but for what a later issue changed on purpose.
    const unchanged = (all: Record<string, string>) =>
      Object.fromEntries(
        Object.entries(all).filter(
          ([name]) => name in definitionsBefore && !CHANGED_SINCE_1DE2A48.includes(name),
        ),
      );
    const live = await liveDefinitions(client);
    expect(Object.keys(live).filter((name) => !(name in definitionsBefore))).toEqual(
      ADDED_SINCE_CUT,
    );
    expect(unchanged(live)).toEqual(unchanged(definitionsBefore));
    for (const name of CHANGED_SINCE_1DE2A48) {
      expect(live[name]).not.toEqual(definitionsBefore[name]);
    }
    const bodies = fileBodies(files);
    expect(Object.keys(bodies)).toHaveLength(22);
    expect(await liveBodies(client)).toEqual(bodies);
    const recorded = await recordedFiles(client);
    expect(Object.fromEntries(Object.entries(recorded).map(([n, r]) => [n, r.checksum]))).toEqual(
      Object.fromEntries(files.map((file) => [file.name, file.checksum])),
    );
  });

  it('the API serves the upgraded database', async () => {
    const api = await TestApp.start({ DATABASE_URL: URL, SWEEP_INTERVAL_MS: '3600000' });
    try {
      const seats = await api.get(`/events/${seeded.eventId}/seats`);
      expect(seats.status).toBe(200);
      const status = (label: string) =>
        (seats.body as { label: string; status: string }[]).find((s) => s.label === label)?.status;
      expect([status('A1'), status('A2'), status('A3'), status('A5')]).toEqual([
        'booked',
        'booked',
        'free',
        'held',
      ]);
    } finally {
      await api.close();
    }
  });
});
