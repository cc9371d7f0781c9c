import { Logger, Module } from '@nestjs/common';
import { Registry } from 'prom-client';
import { LockModule } from '@app/lock';
import { AppConfigService } from '../config/app-config.service';
import { MetricsModule } from '../metrics/metrics.module';

const logger = new Logger('LockProvider');

/** The application's one lock provider, configured from the environment; import where needed. */
@Module({
  imports: [
    LockModule.forRootAsync({
      imports: [MetricsModule],
      inject: [AppConfigService, Registry],
      useFactory: (config: AppConfigService, registry: Registry) => ({
        mode: config.get('LOCK_MODE'),
        redisUrl: config.get('REDIS_URL'),
        redisUrls: config.get('REDIS_URLS')?.split(','),
        commandTimeoutMs: config.get('REDIS_COMMAND_TIMEOUT_MS'),
        registry,
        onAvailabilityChange: (available: boolean, reason?: string) => {
          if (available) {
            logger.log('Redis reachable: seat locks keep contenders away from PostgreSQL');
          } else {
            logger.warn(
              `Redis unreachable (${reason ?? 'unknown'}): holds are decided by PostgreSQL alone, behind a concurrency limit`,
            );
          }
        },
      }),
    }),
  ],
  exports: [LockModule],
})
export class LockProviderModule {}
