import { Module } from '@nestjs/common';
import { LockProviderModule } from '../../lock/lock-provider.module';
import { MetricsModule } from '../../metrics/metrics.module';
import { CatalogModule } from '../catalog/catalog.module';
import { NotificationModule } from '../notification/notification.module';
import { BestAvailableService } from './best-available.service';
import { BookingController } from './booking.controller';
import { BookingMetrics } from './booking.metrics';
import { BookingRepository } from './booking.repository';
import { BookingService } from './booking.service';
import { BookingTimelineRepository } from './booking-timeline.repository';
import { GeneralAdmissionService } from './general-admission.service';
import { HoldSweeperService } from './hold-sweeper.service';
import { HoldService } from './hold.service';

@Module({
  imports: [CatalogModule, NotificationModule, MetricsModule, LockProviderModule],
  controllers: [BookingController],
  providers: [
    BookingService,
    HoldService,
    BestAvailableService,
    GeneralAdmissionService,
    BookingRepository,
    BookingTimelineRepository,
    BookingMetrics,
    HoldSweeperService,
  ],
  exports: [BookingService],
})
export class BookingModule {}
