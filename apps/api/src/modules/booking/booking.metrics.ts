import { Injectable } from '@nestjs/common';
import { Counter, Gauge, Registry } from 'prom-client';

export type HoldOutcome =
  | 'held'
  | 'conflict_redis'
  | 'conflict_database'
  | 'sold_out_redis'
  | 'sold_out_database'
  /** Refused by Redis right after this request (or the crowd it rode with) re-read the count. */
  | 'sold_out_seeded'
  | 'rejected';

/** Counters that show the two layers at work: who Redis turned away, who PostgreSQL decided. */
@Injectable()
export class BookingMetrics {
  readonly holds: Counter<'outcome'>;
  readonly fallbacks: Counter<'reason'>;
  readonly staleFences: Counter;
  readonly expired: Counter<'by'>;
  readonly contentionRatio: Gauge;

  constructor(registry: Registry) {
    this.holds = new Counter({
      name: 'seatlock_holds_total',
      help: 'Hold requests by outcome: conflict_redis and sold_out_redis never reached PostgreSQL',
      labelNames: ['outcome'],
      registers: [registry],
    });
    this.fallbacks = new Counter({
      name: 'seatlock_hold_fallbacks_total',
      help: 'Holds decided by PostgreSQL alone because the lock provider was unavailable',
      labelNames: ['reason'],
      registers: [registry],
    });
    this.staleFences = new Counter({
      name: 'seatlock_fence_rejections_total',
      help: 'Writes PostgreSQL refused because their fencing token was not newer than the row',
      registers: [registry],
    });
    this.expired = new Counter({
      name: 'seatlock_holds_expired_total',
      help: 'Holds turned expired, by the sweeper or inline by a new hold',
      labelNames: ['by'],
      registers: [registry],
    });
    const holds = this.holds;
    this.contentionRatio = new Gauge({
      name: 'seatlock_contention_ratio',
      help: 'Share of losing contenders answered by Redis alone, without touching PostgreSQL',
      registers: [registry],
      async collect() {
        const values = (await holds.get()).values;
        const count = (outcome: HoldOutcome): number =>
          values.find((v) => v.labels.outcome === outcome)?.value ?? 0;
        const redis = count('conflict_redis') + count('sold_out_redis');
        const contended =
          redis +
          count('conflict_database') +
          count('sold_out_database') +
          count('sold_out_seeded');
        this.set(contended === 0 ? 0 : redis / contended);
      },
    });
  }
}
