import 'reflect-metadata';
import { DataSource } from 'typeorm';
import { migrateDatabase } from './migrate-database';
import { typeormOptions } from './typeorm-options';

/**
 * `npm run migrate`: applies the pending migrations and the changed SQL function files to
 * DATABASE_URL and prints what it ran.
 */
async function main(): Promise<void> {
  const url = process.env.DATABASE_URL ?? 'postgres://postgres:postgres@127.0.0.1:5432/seatlock';
  const dataSource = await new DataSource(typeormOptions({ url })).initialize();
  try {
    const { migrations, functions } = await migrateDatabase(dataSource);
    console.log(
      migrations.length === 0 ? 'No pending migrations.' : `Applied: ${migrations.join(', ')}`,
    );
    console.log(
      functions.length === 0
        ? 'SQL functions and triggers unchanged.'
        : `SQL functions and triggers applied: ${functions.join(', ')}`,
    );
  } finally {
    await dataSource.destroy();
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
