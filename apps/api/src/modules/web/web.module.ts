import { Module } from '@nestjs/common';
import { SeatMapPage } from './seat-map-page';
import { WebController } from './web.controller';

/** `GET /`: the seat-map page, which uses the public API and the live seat stream only. */
@Module({
  controllers: [WebController],
  providers: [SeatMapPage],
})
export class WebModule {}
