import type { DataSourceOptions } from 'typeorm';
import { BookingTimelineEntryEntity } from '../modules/booking/booking-timeline-entry.entity';
import { BookingEntity } from '../modules/booking/booking.entity';
import { EventEntity } from '../modules/catalog/event.entity';
import { SeatEntity } from '../modules/catalog/seat.entity';
import { CustomerEntity } from '../modules/customer/customer.entity';
import { InAppNotificationEntity } from '../modules/notification/in-app-notification.entity';
import { OutboxMessageEntity } from '../modules/notification/outbox-message.entity';
import { PaymentEntity } from '../modules/payment/payment.entity';
import { InitialSchema1763800000000 } from './migrations/1763800000000-initial-schema';
import { Payments1763900000000 } from './migrations/1763900000000-payments';
import { Notifications1764000000000 } from './migrations/1764000000000-notifications';
import { NotificationDeliveries1764100000000 } from './migrations/1764100000000-notification-deliveries';
import { OneStatementHold1764200000000 } from './migrations/1764200000000-one-statement-hold';

export interface DatabaseSettings {
  url: string;
  poolSize?: number;
  migrationsRun?: boolean;
}

/** One definition of the schema's classes, shared by the app, the TypeORM CLI and the tests. */
export function typeormOptions(settings: DatabaseSettings): DataSourceOptions {
  return {
    type: 'postgres',
    url: settings.url,
    entities: [
      CustomerEntity,
      EventEntity,
      SeatEntity,
      BookingEntity,
      BookingTimelineEntryEntity,
      OutboxMessageEntity,
      PaymentEntity,
      InAppNotificationEntity,
    ],
    migrations: [
      InitialSchema1763800000000,
      Payments1763900000000,
      Notifications1764000000000,
      NotificationDeliveries1764100000000,
      OneStatementHold1764200000000,
    ],
    migrationsRun: settings.migrationsRun ?? false,
    migrationsTransactionMode: 'each',
    synchronize: false,
    extra: { max: settings.poolSize ?? 10, connectionTimeoutMillis: 5000 },
  };
}
