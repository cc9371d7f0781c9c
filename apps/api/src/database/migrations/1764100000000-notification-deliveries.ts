import type { MigrationInterface, QueryRunner } from 'typeorm';

export class NotificationDeliveries1764100000000 implements MigrationInterface {
  name = 'NotificationDeliveries1764100000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    // Outbound webhook subscriptions. The secret is stored (it signs every delivery) and shown once.
    await queryRunner.query(`
      CREATE TABLE webhook_endpoints (
        id uuid PRIMARY KEY,
        customer_id uuid NOT NULL REFERENCES customers (id),
        url text NOT NULL,
        events text[] NOT NULL,
        secret text NOT NULL,
        status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled', 'deleted')),
        disabled_reason text,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
      )`);
    await queryRunner.query(
      `CREATE INDEX webhook_endpoints_customer_idx ON webhook_endpoints (customer_id, created_at DESC, id)`,
    );

    // One row per (message, channel, target): what a channel that talks to the outside world still
    // has to send. Written by the channel's fan-out in the dispatcher's transaction; sent by the
    // delivery worker with its own attempts, backoff and dead letter, so a slow or dead receiver
    // never holds up the outbox or the other targets.
    await queryRunner.query(`
      CREATE TABLE notification_deliveries (
        id uuid PRIMARY KEY,
        message_id uuid NOT NULL REFERENCES outbox_messages (id) ON DELETE CASCADE,
        channel text NOT NULL,
        target text NOT NULL,
        endpoint_id uuid REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
        status text NOT NULL DEFAULT 'pending'
          CHECK (status IN ('pending', 'delivered', 'dead', 'cancelled')),
        attempts integer NOT NULL DEFAULT 0,
        next_attempt_at timestamptz NOT NULL DEFAULT now(),
        claimed_by uuid,
        claimed_until timestamptz,
        last_error text,
        delivered_at timestamptz,
        created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        UNIQUE (message_id, channel, target)
      )`);
    await queryRunner.query(
      `CREATE INDEX notification_deliveries_due_idx ON notification_deliveries (next_attempt_at)
       WHERE status = 'pending'`,
    );
    await queryRunner.query(
      `CREATE INDEX notification_deliveries_endpoint_idx
       ON notification_deliveries (endpoint_id, created_at DESC, id)`,
    );

    // Every attempt, for the deliveries log (status, latency, error).
    await queryRunner.query(`
      CREATE TABLE delivery_attempts (
        id bigserial PRIMARY KEY,
        delivery_id uuid NOT NULL REFERENCES notification_deliveries (id) ON DELETE CASCADE,
        attempt integer NOT NULL,
        status_code integer,
        latency_ms integer NOT NULL,
        error text,
        at timestamptz NOT NULL DEFAULT clock_timestamp()
      )`);
    await queryRunner.query(
      `CREATE INDEX delivery_attempts_delivery_idx ON delivery_attempts (delivery_id, id)`,
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    for (const table of ['delivery_attempts', 'notification_deliveries', 'webhook_endpoints']) {
      await queryRunner.query(`DROP TABLE IF EXISTS ${table}`);
    }
  }
}
