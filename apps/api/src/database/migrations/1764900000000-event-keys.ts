import type { MigrationInterface, QueryRunner } from 'typeorm';

const RECORD_EVENT = (timelineColumns: string, timelineValues: string) => `
  CREATE OR REPLACE FUNCTION seatlock_record_booking_event(
    b bookings, p_type text, p_detail text, p_extra jsonb DEFAULT '{}')
  RETURNS void LANGUAGE plpgsql AS $$
  BEGIN
    INSERT INTO booking_timeline (${timelineColumns}) VALUES (${timelineValues});
    PERFORM seatlock_outbox_enqueue(p_type, b.customer_id, b.id,
              jsonb_build_object('booking', seatlock_booking_json(b)) || p_extra);
  END
  $$`;

/**
 * The cheap half of sharding by event (docs/scaling.md): the two tables written per booking that
 * did not carry the booking's event now do, so they can be co-located with their booking on the
 * event's shard. The timeline's writer passes it (it has the booking row at hand); any other
 * writer gets it filled from the booking before insert.
 */
export class EventKeys1764900000000 implements MigrationInterface {
  name = 'EventKeys1764900000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE FUNCTION seatlock_fill_event_id() RETURNS trigger
      LANGUAGE plpgsql AS $$
      BEGIN
        SELECT event_id INTO NEW.event_id FROM bookings WHERE id = NEW.booking_id;
        RETURN NEW;
      END
      $$`);
    for (const table of ['booking_timeline', 'payments']) {
      await queryRunner.query(`ALTER TABLE ${table} ADD COLUMN event_id uuid`);
      await queryRunner.query(
        `UPDATE ${table} t SET event_id = b.event_id FROM bookings b WHERE b.id = t.booking_id`,
      );
      await queryRunner.query(`ALTER TABLE ${table} ALTER COLUMN event_id SET NOT NULL`);
      await queryRunner.query(`
        CREATE TRIGGER ${table}_event_id BEFORE INSERT ON ${table}
          FOR EACH ROW WHEN (NEW.event_id IS NULL)
          EXECUTE FUNCTION seatlock_fill_event_id()`);
    }
    await queryRunner.query(
      RECORD_EVENT('booking_id, event_id, type, detail', 'b.id, b.event_id, p_type, p_detail'),
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(RECORD_EVENT('booking_id, type, detail', 'b.id, p_type, p_detail'));
    for (const table of ['booking_timeline', 'payments']) {
      await queryRunner.query(`DROP TRIGGER IF EXISTS ${table}_event_id ON ${table}`);
      await queryRunner.query(`ALTER TABLE ${table} DROP COLUMN IF EXISTS event_id`);
    }
    await queryRunner.query(`DROP FUNCTION IF EXISTS seatlock_fill_event_id`);
  }
}
