import { Module } from '@nestjs/common';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { MetricsController } from './metrics.controller';

/** One Prometheus registry per application instance (tests start several in one process). */
@Module({
  controllers: [MetricsController],
  providers: [
    {
      provide: Registry,
      useFactory: () => {
        const registry = new Registry();
        // The event-loop delay histogram samples every 10 ms by default: 100 wake-ups a second,
        // 5 ms of CPU per second at idle, more than everything else an idle API does. 100 ms
        // still sees every stall long enough to matter.
        collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 100 });
        return registry;
      },
    },
  ],
  exports: [Registry],
})
export class MetricsModule {}
