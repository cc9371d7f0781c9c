import type { DataSourceOptions } from 'typeorm';
import { BookingTimelineEntryEntity } from '../modules/booking/booking-timeline-entry.entity';
import { BookingEntity } from '../modules/booking/booking.entity';
import { EventEntity } from '../modules/catalog/event.entity';
import { SeatEntity } from '../modules/catalog/seat.entity';
import { CustomerEntity } from '../modules/customer/customer.entity';
import { OutboxMessageEntity } from '../modules/notification/outbox-message.entity';
import { InitialSchema1763800000000 } from './migrations/1763800000000-initial-schema';

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
    ],
    migrations: [InitialSchema1763800000000],
    migrationsRun: settings.migrationsRun ?? false,
    migrationsTransactionMode: 'each',
    synchronize: false,
    extra: { max: settings.poolSize ?? 10, connectionTimeoutMillis: 5000 },
  };
}
