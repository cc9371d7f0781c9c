import { Injectable } from '@nestjs/common';
import { HealthIndicatorService } from '@nestjs/terminus';
import { LockProvider } from '@app/lock';

/**
 * Redis is an efficiency layer: when it is down the service still books correctly (PostgreSQL
 * decides alone), so readiness reports it `degraded`, never `down`.
 */
@Injectable()
export class RedisHealthIndicator {
  constructor(
    private readonly lock: LockProvider,
    private readonly health: HealthIndicatorService,
  ) {}

  async check(key: string) {
    const indicator = this.health.check(key);
    if (this.lock.mode === 'off') return indicator.up({ mode: 'off' });
    try {
      await this.lock.ping();
      return indicator.up({ mode: this.lock.mode });
    } catch (error) {
      return indicator.degraded({
        mode: this.lock.mode,
        message: `unreachable; PostgreSQL decides holds alone (${(error as Error).message})`,
      });
    }
  }
}
