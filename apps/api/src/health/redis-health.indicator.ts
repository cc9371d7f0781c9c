import { Injectable, Logger } from '@nestjs/common';
import { HealthIndicatorService } from '@nestjs/terminus';
import { LockProvider } from '@app/lock';

/**
 * Redis is an efficiency layer: when it is down the service still books correctly (PostgreSQL
 * decides alone), so readiness reports it `degraded`, never `down`. Why it is unreachable goes to
 * the log, not the answer: a probe is public, and the error names hosts and ports of our network.
 */
@Injectable()
export class RedisHealthIndicator {
  private readonly logger = new Logger(RedisHealthIndicator.name);
  /** The last failure logged (null: answering), so a probe every second logs only changes. */
  private lastFailure: string | null = null;

  constructor(
    private readonly lock: LockProvider,
    private readonly health: HealthIndicatorService,
  ) {}

  async check(key: string) {
    const indicator = this.health.check(key);
    if (this.lock.mode === 'off') return indicator.up({ mode: 'off' });
    try {
      await this.lock.ping();
      if (this.lastFailure !== null) {
        this.lastFailure = null;
        this.logger.log('Readiness: Redis up again');
      }
      return indicator.up({ mode: this.lock.mode });
    } catch (error) {
      const reason = (error as Error).message;
      if (reason !== this.lastFailure) {
        // Info, not a warning: the lock provider has already warned that Redis went away.
        this.lastFailure = reason;
        this.logger.log({ reason }, 'Readiness: Redis degraded');
      }
      return indicator.degraded({
        mode: this.lock.mode,
        message: 'unreachable; PostgreSQL decides holds alone',
      });
    }
  }
}
