import { Controller, Get, Header, UseGuards } from '@nestjs/common';
import { ApiProduces, ApiTags } from '@nestjs/swagger';
import { SkipRateLimit } from '../common/rate-limit/skip-rate-limit.decorator';
import { Registry } from 'prom-client';
import { ApiProblems } from '../common/http/api-problems.decorator';
import { MetricsTokenGuard } from './metrics-token.guard';

@ApiTags('operations')
@SkipRateLimit()
@Controller('metrics')
export class MetricsController {
  constructor(private readonly registry: Registry) {}

  /** Prometheus text exposition. With METRICS_TOKEN set, only for `Authorization: Bearer <it>`. */
  @Get()
  @UseGuards(MetricsTokenGuard)
  @ApiProblems(401)
  @Header('Content-Type', 'text/plain; version=0.0.4; charset=utf-8')
  @ApiProduces('text/plain')
  metrics(): Promise<string> {
    return this.registry.metrics();
  }
}
