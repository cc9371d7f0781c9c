import 'reflect-metadata';
import { DataSource } from 'typeorm';
import { typeormOptions } from './typeorm-options';

/**
 * For the TypeORM CLI (`typeorm migration:generate|revert -d dist/.../data-source.js`). Its
 * `migration:run` runs the versioned migrations only, not the SQL function files: migrate with
 * `npm run migrate` (or start the API).
 */
export default new DataSource(
  typeormOptions({
    url: process.env.DATABASE_URL ?? 'postgres://postgres:postgres@127.0.0.1:5432/seatlock',
  }),
);
