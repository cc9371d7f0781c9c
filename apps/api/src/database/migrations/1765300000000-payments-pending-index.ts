import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The reconciler sleeps until a payment needs it; asking when (and which asynchronous
 * authorizations have gone unanswered) reads unsettled payments by age through this index instead
 * of every payment.
 */
export class PaymentsPendingIndex1765300000000 implements MigrationInterface {
  name = 'PaymentsPendingIndex1765300000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `CREATE INDEX IF NOT EXISTS payments_pending_idx ON payments (updated_at)
       WHERE status = 'pending' AND next_action IS NULL AND gateway_intent_id IS NOT NULL`,
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP INDEX IF EXISTS payments_pending_idx`);
  }
}
