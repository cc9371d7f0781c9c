import { Controller, Get } from '@nestjs/common';
import { ApiTags } from '@nestjs/swagger';
import { SkipRateLimit } from '../common/rate-limit/skip-rate-limit.decorator';
import {
  HealthCheck,
  HealthCheckService,
  type HealthCheckResult,
  TypeOrmHealthIndicator,
} from '@nestjs/terminus';
import { LivenessDto } from './dto/liveness.dto';
import { RedisHealthIndicator } from './redis-health.indicator';

/** A readiness answer is reused this long: probes from anywhere cost one check a second at most. */
export const READINESS_MAX_AGE_MS = 1000;

@ApiTags('operations')
@SkipRateLimit()
@Controller('health')
export class HealthController {
  /** The latest check and when it started: shared while it runs, reused for a second after. */
  private latest: {
    startedAt: number;
    running: boolean;
    result: Promise<HealthCheckResult>;
  } | null = null;

  constructor(
    private readonly health: HealthCheckService,
    private readonly database: TypeOrmHealthIndicator,
    private readonly redis: RedisHealthIndicator,
  ) {}

  /** The process is up and serving HTTP. */
  @Get('live')
  live(): LivenessDto {
    return { status: 'ok' };
  }

  /**
   * Ready to serve: PostgreSQL answers (503 if not); Redis down only makes it `degraded`. The
   * answer is at most 1 s old: concurrent callers share one check, later ones reuse it for 1 s.
   */
  @Get('ready')
  @HealthCheck()
  ready(): Promise<HealthCheckResult> {
    const now = performance.now();
    const latest = this.latest;
    if (latest && (latest.running || now - latest.startedAt < READINESS_MAX_AGE_MS)) {
      return latest.result;
    }
    // A 503 is a rejection (terminus throws it): shared and reused like a 200.
    const result = this.health.check([
      () => this.database.pingCheck('database', { timeout: 2000 }),
      () => this.redis.check('redis'),
    ]);
    const check = { startedAt: now, running: true, result };
    this.latest = check;
    const settled = () => {
      check.running = false;
    };
    result.then(settled, settled);
    return result;
  }
}
