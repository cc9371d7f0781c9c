import { Module } from '@nestjs/common';
import { AdminEventController } from './admin-event.controller';
import { CatalogController } from './catalog.controller';
import { CatalogService } from './catalog.service';
import { EventRepository } from './event.repository';
import { SeatRepository } from './seat.repository';

/**
 * Events and their seats. Other modules see CatalogService and what seat-map.ts declares (the seat
 * map, seat statuses, unit labels), never the repositories: the lint config refuses other imports.
 */
@Module({
  controllers: [CatalogController, AdminEventController],
  providers: [CatalogService, EventRepository, SeatRepository],
  exports: [CatalogService],
})
export class CatalogModule {}
