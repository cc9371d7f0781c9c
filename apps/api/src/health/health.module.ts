import { Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { LockProviderModule } from '../lock/lock-provider.module';
import { HealthController } from './health.controller';
import { RedisHealthIndicator } from './redis-health.indicator';

@Module({
  imports: [TerminusModule.forRoot({ errorLogStyle: 'json' }), LockProviderModule],
  controllers: [HealthController],
  providers: [RedisHealthIndicator],
})
export class HealthModule {}
