import 'reflect-metadata';
import { DataSource } from 'typeorm';
import { typeormOptions } from './typeorm-options';

/** For the TypeORM CLI (`typeorm migration:run -d dist/.../data-source.js`). */
export default new DataSource(
  typeormOptions({
    url: process.env.DATABASE_URL ?? 'postgres://postgres:postgres@127.0.0.1:5432/seatlock',
  }),
);
