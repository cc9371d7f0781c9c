import type { MigrationInterface, QueryRunner } from 'typeorm';

export class InitialSchema1763800000000 implements MigrationInterface {
  name = 'InitialSchema1763800000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE customers (
        id uuid PRIMARY KEY,
        email text NOT NULL,
        name text NOT NULL,
        token_hash char(64) NOT NULL UNIQUE,
        created_at timestamptz NOT NULL DEFAULT now()
      )`);
    await queryRunner.query(`CREATE UNIQUE INDEX customers_email_key ON customers (lower(email))`);

    await queryRunner.query(`
      CREATE TABLE events (
        id uuid PRIMARY KEY,
        name text NOT NULL,
        venue text NOT NULL,
        starts_at timestamptz NOT NULL,
        currency char(3) NOT NULL,
        sections jsonb NOT NULL,
        seat_count integer NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
      )`);
    await queryRunner.query(`CREATE INDEX events_starts_at_idx ON events (starts_at, id)`);

    // fence: the token of the lease that last wrote the row; PostgreSQL is its authority.
    await queryRunner.query(`
      CREATE TABLE seats (
        event_id uuid NOT NULL REFERENCES events (id) ON DELETE CASCADE,
        label text NOT NULL,
        section text NOT NULL,
        position integer NOT NULL,
        price_cents integer NOT NULL CHECK (price_cents >= 0),
        status text NOT NULL DEFAULT 'free' CHECK (status IN ('free', 'held', 'booked')),
        booking_id uuid,
        held_until timestamptz,
        fence bigint NOT NULL DEFAULT 0,
        PRIMARY KEY (event_id, label),
        CHECK ((status = 'free') = (booking_id IS NULL)),
        CHECK ((status = 'held') = (held_until IS NOT NULL))
      )`);
    await queryRunner.query(`CREATE INDEX seats_event_position_idx ON seats (event_id, position)`);
    await queryRunner.query(
      `CREATE INDEX seats_held_until_idx ON seats (held_until) WHERE status = 'held'`,
    );

    await queryRunner.query(`
      CREATE TABLE bookings (
        id uuid PRIMARY KEY,
        customer_id uuid NOT NULL REFERENCES customers (id),
        event_id uuid NOT NULL REFERENCES events (id),
        status text NOT NULL
          CHECK (status IN ('held', 'confirmed', 'released', 'expired', 'cancelled')),
        seat_labels text[] NOT NULL,
        amount_cents bigint NOT NULL,
        currency char(3) NOT NULL,
        expires_at timestamptz NOT NULL,
        fence bigint NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
      )`);
    await queryRunner.query(
      `CREATE INDEX bookings_customer_idx ON bookings (customer_id, created_at DESC, id)`,
    );
    await queryRunner.query(
      `CREATE INDEX bookings_held_expiry_idx ON bookings (expires_at) WHERE status = 'held'`,
    );

    await queryRunner.query(`
      CREATE TABLE booking_timeline (
        id bigserial PRIMARY KEY,
        booking_id uuid NOT NULL REFERENCES bookings (id),
        type text NOT NULL,
        detail text NOT NULL,
        at timestamptz NOT NULL DEFAULT clock_timestamp()
      )`);
    await queryRunner.query(
      `CREATE INDEX booking_timeline_booking_idx ON booking_timeline (booking_id, id)`,
    );

    await queryRunner.query(`
      CREATE TABLE outbox_messages (
        id uuid PRIMARY KEY,
        topic text NOT NULL,
        customer_id uuid,
        aggregate_id uuid,
        payload jsonb NOT NULL,
        status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'dead')),
        attempts integer NOT NULL DEFAULT 0,
        available_at timestamptz NOT NULL DEFAULT now(),
        created_at timestamptz NOT NULL DEFAULT clock_timestamp()
      )`);
    await queryRunner.query(
      `CREATE INDEX outbox_messages_due_idx ON outbox_messages (available_at) WHERE status = 'pending'`,
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    for (const table of [
      'outbox_messages',
      'booking_timeline',
      'bookings',
      'seats',
      'events',
      'customers',
    ]) {
      await queryRunner.query(`DROP TABLE IF EXISTS ${table}`);
    }
  }
}
