import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The seat stream keeps each event's section counts in seat_streams.sections ([{name, available}]
 * as of `seq`) and moves them by the changes it numbers, instead of counting the event's seats for
 * every message (functions/20-seatlock_stream_batch.function.sql). NULL until the stream's first
 * batch counts them once. seat_changes rows now carry each change's section and its effect on the
 * free count (functions/10-seats_record_changes.trigger.sql).
 */
export class KeptSectionCounts1765200000000 implements MigrationInterface {
  name = 'KeptSectionCounts1765200000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE seat_streams ADD COLUMN sections jsonb`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE seat_streams DROP COLUMN IF EXISTS sections`);
  }
}
