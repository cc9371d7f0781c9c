import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The cut: from here on every SQL function and trigger lives in one file of
 * apps/api/src/database/functions, applied after the versioned migrations whenever its content
 * changed (migrateDatabase). This table records, per function or trigger, the sha256 of the file
 * last applied. No migration after this one creates a function or a trigger
 * (function-files.spec.ts checks it); the earlier ones keep theirs, as history that a database at
 * an older schema still upgrades through.
 */
export class SchemaFunctions1765100000000 implements MigrationInterface {
  name = 'SchemaFunctions1765100000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE schema_functions (
        name text PRIMARY KEY,
        checksum char(64) NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now()
      )`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE IF EXISTS schema_functions`);
  }
}
