import { Module } from '@nestjs/common';
import { AdminEventController } from './admin-event.controller';
import { CatalogController } from './catalog.controller';
import { CatalogService } from './catalog.service';

@Module({
  controllers: [CatalogController, AdminEventController],
  providers: [CatalogService],
  exports: [CatalogService],
})
export class CatalogModule {}
