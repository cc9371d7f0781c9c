import type { MigrationInterface, QueryRunner } from 'typeorm';

export class Payments1763900000000 implements MigrationInterface {
  name = 'Payments1763900000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    // status: what the money is (pending = the gateway's answer is not known yet);
    // next_action: what is still owed to the gateway, decided in the transaction that decided it,
    // so a crash between commit and the gateway call is finished by the reconciler.
    await queryRunner.query(`
      CREATE TABLE payments (
        id uuid PRIMARY KEY,
        booking_id uuid NOT NULL REFERENCES bookings (id),
        customer_id uuid NOT NULL REFERENCES customers (id),
        status text NOT NULL DEFAULT 'pending'
          CHECK (status IN ('pending', 'authorized', 'captured', 'voided', 'refunded', 'failed')),
        next_action text
          CHECK (next_action IN ('authorize', 'confirm', 'capture', 'void', 'refund')),
        amount_cents bigint NOT NULL CHECK (amount_cents >= 0),
        refunded_cents bigint NOT NULL DEFAULT 0 CHECK (refunded_cents >= 0),
        currency char(3) NOT NULL,
        payment_method text NOT NULL,
        fence bigint NOT NULL,
        gateway_idempotency_key text NOT NULL UNIQUE,
        gateway_intent_id text UNIQUE,
        failure_code text,
        failure_message text,
        attempts integer NOT NULL DEFAULT 0,
        created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        updated_at timestamptz NOT NULL DEFAULT clock_timestamp()
      )`);
    await queryRunner.query(
      `CREATE INDEX payments_booking_idx ON payments (booking_id, created_at, id)`,
    );
    await queryRunner.query(
      `CREATE INDEX payments_next_action_idx ON payments (updated_at) WHERE next_action IS NOT NULL`,
    );

    // A completed request's answer per (customer, key), replayed for 24 h; in_flight rows carry a
    // lease so a key abandoned by a crashed process can be taken over.
    await queryRunner.query(`
      CREATE TABLE idempotency_keys (
        customer_id uuid NOT NULL REFERENCES customers (id),
        key text NOT NULL,
        fingerprint char(64) NOT NULL,
        state text NOT NULL CHECK (state IN ('in_flight', 'completed')),
        response_status integer,
        response_body text,
        locked_until timestamptz NOT NULL,
        expires_at timestamptz NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (customer_id, key)
      )`);
    await queryRunner.query(
      `CREATE INDEX idempotency_keys_expiry_idx ON idempotency_keys (expires_at)`,
    );

    // Gateway events already applied; the insert shares the transaction of the effect.
    await queryRunner.query(`
      CREATE TABLE gateway_events (
        id text PRIMARY KEY,
        type text NOT NULL,
        received_at timestamptz NOT NULL DEFAULT now()
      )`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    for (const table of ['gateway_events', 'idempotency_keys', 'payments']) {
      await queryRunner.query(`DROP TABLE IF EXISTS ${table}`);
    }
  }
}
