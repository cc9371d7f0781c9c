import { Module } from '@nestjs/common';
import { LockProviderModule } from '../../lock/lock-provider.module';
import { MetricsModule } from '../../metrics/metrics.module';
import { CatalogModule } from '../catalog/catalog.module';
import { SeatStreamBus } from './seat-stream.bus';
import { SeatStreamController } from './seat-stream.controller';
import { SeatStreamPublisher } from './seat-stream.publisher';
import { SeatStreamRepository } from './seat-stream.repository';
import { SeatStreamService } from './seat-stream.service';

/** The live seat stream: changes recorded by PostgreSQL, numbered, fanned out through Redis. */
@Module({
  imports: [CatalogModule, MetricsModule, LockProviderModule],
  controllers: [SeatStreamController],
  providers: [SeatStreamService, SeatStreamRepository, SeatStreamBus, SeatStreamPublisher],
  exports: [SeatStreamService],
})
export class StreamModule {}
