import type { MigrationInterface, QueryRunner } from 'typeorm';

export class Notifications1764000000000 implements MigrationInterface {
  name = 'Notifications1764000000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    // claimed_by/claimed_until: a dispatcher's lease on a pending message. A crashed instance's claim
    // simply runs out and the message is due again; claimed_by lets the claimer check, in its fan-out
    // transaction, that nobody took the message over meanwhile.
    await queryRunner.query(`
      ALTER TABLE outbox_messages
        ADD COLUMN claimed_by uuid,
        ADD COLUMN claimed_until timestamptz,
        ADD COLUMN last_error text,
        ADD COLUMN dispatched_at timestamptz,
        ADD COLUMN dispatched_by text`);
    await queryRunner.query(
      `CREATE INDEX outbox_messages_status_idx ON outbox_messages (status, created_at DESC, id)`,
    );

    // One in-app notification per outbox message (message_id UNIQUE): a message dispatched twice
    // after a lost lease still shows once. created_at is the message's, i.e. when the change committed.
    await queryRunner.query(`
      CREATE TABLE notifications (
        id uuid PRIMARY KEY,
        message_id uuid NOT NULL UNIQUE,
        customer_id uuid NOT NULL REFERENCES customers (id),
        booking_id uuid,
        type text NOT NULL,
        title text NOT NULL,
        body text NOT NULL,
        created_at timestamptz NOT NULL,
        read_at timestamptz
      )`);
    await queryRunner.query(
      `CREATE INDEX notifications_customer_idx ON notifications (customer_id, created_at DESC, id)`,
    );
    await queryRunner.query(
      `CREATE INDEX notifications_unread_idx ON notifications (customer_id, created_at DESC, id)
       WHERE read_at IS NULL`,
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE IF EXISTS notifications`);
    await queryRunner.query(`DROP INDEX IF EXISTS outbox_messages_status_idx`);
    await queryRunner.query(`
      ALTER TABLE outbox_messages
        DROP COLUMN IF EXISTS claimed_by,
        DROP COLUMN IF EXISTS claimed_until,
        DROP COLUMN IF EXISTS last_error,
        DROP COLUMN IF EXISTS dispatched_at,
        DROP COLUMN IF EXISTS dispatched_by`);
  }
}
