import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { AppConfigService } from '../config/app-config.service';
import { typeormOptions } from './typeorm-options';

/** The one DataSource; migrations run at start-up unless MIGRATIONS_RUN=false. */
@Module({
  imports: [
    TypeOrmModule.forRootAsync({
      inject: [AppConfigService],
      useFactory: (config: AppConfigService) =>
        typeormOptions({
          url: config.get('DATABASE_URL'),
          poolSize: config.get('DB_POOL_SIZE'),
          migrationsRun: config.get('MIGRATIONS_RUN'),
        }),
    }),
  ],
})
export class DatabaseModule {}
