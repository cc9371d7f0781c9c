import { Module } from '@nestjs/common';
import { AdminEventController } from './admin-event.controller';
import { CatalogController } from './catalog.controller';
import { CatalogService } from './catalog.service';
import { EventRepository } from './event.repository';
import { SeatRepository } from './seat.repository';

@Module({
  controllers: [CatalogController, AdminEventController],
  providers: [CatalogService, EventRepository, SeatRepository],
  exports: [CatalogService],
})
export class CatalogModule {}
