import { type DataSource, MigrationExecutor } from 'typeorm';
import { applyFunctionFiles, FUNCTIONS_DIR, readFunctionFiles } from './function-files';

/** One key for every instance of the API: migrations run one instance at a time. */
const MIGRATION_LOCK = `hashtextextended('seatlock_migrate', 0)`;

export interface MigrationOutcome {
  /** The versioned migrations this call ran. */
  migrations: string[];
  /** The function and trigger files this call applied (new, changed or missing). */
  functions: string[];
}

/**
 * Brings the database up to date: the pending versioned migrations (each in its transaction),
 * then the SQL function and trigger files whose content changed (together, in one transaction).
 * The only way the app, `npm run migrate` and the tests migrate. Under a session advisory lock on
 * one connection (so a pool of one suffices): instances starting together take turns, and the
 * later ones find nothing left to do.
 */
export async function migrateDatabase(
  dataSource: DataSource,
  functionsDir = FUNCTIONS_DIR,
): Promise<MigrationOutcome> {
  // Read first: a build without its SQL files fails before touching the database.
  const files = readFunctionFiles(functionsDir);
  const queryRunner = dataSource.createQueryRunner();
  await queryRunner.connect();
  try {
    await queryRunner.query(`SELECT pg_advisory_lock(${MIGRATION_LOCK})`);
    try {
      const executor = new MigrationExecutor(dataSource, queryRunner);
      executor.transaction = 'each';
      const migrations = await executor.executePendingMigrations();
      const functions = await applyFunctionFiles(queryRunner, files);
      return { migrations: migrations.map((migration) => migration.name), functions };
    } finally {
      // (Should the connection be gone, its session took the lock with it.)
      await queryRunner.query(`SELECT pg_advisory_unlock(${MIGRATION_LOCK})`);
    }
  } finally {
    await queryRunner.release();
  }
}
