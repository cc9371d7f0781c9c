import { Logger, Module, type OnModuleInit } from '@nestjs/common';
import { InjectDataSource, TypeOrmModule } from '@nestjs/typeorm';
import type { Pool, PoolClient } from 'pg';
import { DataSource } from 'typeorm';
import { AppConfigService } from '../config/app-config.service';
import { migrateDatabase } from './migrate-database';
import { typeormOptions } from './typeorm-options';

const startupLogger = new Logger('Database');

/**
 * The one DataSource; at start-up, unless MIGRATIONS_RUN=false, the migrations and the changed SQL
 * function files are applied before anything can use it.
 */
@Module({
  imports: [
    TypeOrmModule.forRootAsync({
      inject: [AppConfigService],
      // migrationsRun here is this module's flag, read by dataSourceFactory below, not TypeORM's.
      useFactory: (config: AppConfigService) => ({
        ...typeormOptions({
          url: config.get('DATABASE_URL'),
          poolSize: config.get('DB_POOL_SIZE'),
        }),
        migrationsRun: config.get('MIGRATIONS_RUN'),
      }),
      dataSourceFactory: async (options) => {
        if (!options) throw new Error('DatabaseModule: no DataSource options');
        const dataSource = await new DataSource({ ...options, migrationsRun: false }).initialize();
        if (!options.migrationsRun) return dataSource;
        try {
          const { migrations, functions } = await migrateDatabase(dataSource);
          if (migrations.length > 0) startupLogger.log(`Migrated: ${migrations.join(', ')}`);
          if (functions.length > 0) {
            startupLogger.log(`SQL functions and triggers applied: ${functions.join(', ')}`);
          }
          return dataSource;
        } catch (error) {
          await dataSource.destroy();
          throw error;
        }
      },
    }),
  ],
})
export class DatabaseModule implements OnModuleInit {
  private readonly logger = new Logger('Database');

  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  /**
   * Every pooled client gets an 'error' listener for its whole life. TypeORM listens only while a
   * query runner holds the client and pg only while it is idle, so an error in between (or a second
   * one, e.g. 57P01 when PostgreSQL restarts) would be an unhandled event that kills the process.
   */
  onModuleInit(): void {
    const pool = (this.dataSource.driver as unknown as { master?: Pool }).master;
    if (!pool) return;
    const guard = (client: PoolClient): void => {
      client.on('error', (error) =>
        this.logger.warn(`PostgreSQL connection lost: ${error.message}`),
      );
    };
    pool.on('connect', guard);
    // The client TypeORM opened to check the connection exists already.
    for (const client of (pool as unknown as { _clients?: PoolClient[] })._clients ?? []) {
      guard(client);
    }
  }
}
