import { Module } from '@nestjs/common';
import { LockProviderModule } from '../../lock/lock-provider.module';
import { RateLimiter } from './rate-limiter';

/** The shared rate-limit counters (Redis, per instance while it is down). */
@Module({
  imports: [LockProviderModule],
  providers: [RateLimiter],
  exports: [RateLimiter],
})
export class RateLimitModule {}
