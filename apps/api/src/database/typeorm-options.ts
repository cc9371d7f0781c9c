import type { DataSourceOptions } from 'typeorm';
import { InitialSchema1763800000000 } from './migrations/1763800000000-initial-schema';
import { Payments1763900000000 } from './migrations/1763900000000-payments';
import { Notifications1764000000000 } from './migrations/1764000000000-notifications';
import { NotificationDeliveries1764100000000 } from './migrations/1764100000000-notification-deliveries';
import { OneStatementHold1764200000000 } from './migrations/1764200000000-one-statement-hold';
import { OneStatementPayments1764300000000 } from './migrations/1764300000000-one-statement-payments';
import { OnSaleSeating1764400000000 } from './migrations/1764400000000-on-sale-seating';
import { GeneralAdmission1764500000000 } from './migrations/1764500000000-general-admission';
import { FairUnitClaims1764600000000 } from './migrations/1764600000000-fair-unit-claims';
import { ExtendAfterLock1764700000000 } from './migrations/1764700000000-extend-after-lock';
import { SeatStream1764800000000 } from './migrations/1764800000000-seat-stream';
import { EventKeys1764900000000 } from './migrations/1764900000000-event-keys';
import { ConfirmNeedsPending1765000000000 } from './migrations/1765000000000-confirm-needs-pending';
import { SchemaFunctions1765100000000 } from './migrations/1765100000000-schema-functions';
import { KeptSectionCounts1765200000000 } from './migrations/1765200000000-kept-section-counts';
import { PaymentsPendingIndex1765300000000 } from './migrations/1765300000000-payments-pending-index';

export interface DatabaseSettings {
  url: string;
  poolSize?: number;
}

/**
 * The connection and the versioned migrations, shared by the app, the TypeORM CLI and the tests. No
 * entities: the migrations and the SQL function files are the schema's only source, and tables are
 * read and written with SQL.
 */
export function typeormOptions(settings: DatabaseSettings): DataSourceOptions {
  return {
    type: 'postgres',
    url: settings.url,
    migrations: [
      InitialSchema1763800000000,
      Payments1763900000000,
      Notifications1764000000000,
      NotificationDeliveries1764100000000,
      OneStatementHold1764200000000,
      OneStatementPayments1764300000000,
      OnSaleSeating1764400000000,
      GeneralAdmission1764500000000,
      FairUnitClaims1764600000000,
      ExtendAfterLock1764700000000,
      SeatStream1764800000000,
      EventKeys1764900000000,
      ConfirmNeedsPending1765000000000,
      SchemaFunctions1765100000000,
      KeptSectionCounts1765200000000,
      PaymentsPendingIndex1765300000000,
    ],
    // Never TypeORM's own run: it knows nothing of the function files (migrateDatabase does both).
    migrationsRun: false,
    migrationsTransactionMode: 'each',
    synchronize: false,
    extra: { max: settings.poolSize ?? 10, connectionTimeoutMillis: 5000 },
  };
}
