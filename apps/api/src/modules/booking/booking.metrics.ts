import { Injectable } from '@nestjs/common';
import { Counter, Registry } from 'prom-client';

export type HoldOutcome = 'held' | 'conflict_redis' | 'conflict_database' | 'rejected';

/** Counters that show the two layers at work: who Redis turned away, who PostgreSQL decided. */
@Injectable()
export class BookingMetrics {
  readonly holds: Counter<'outcome'>;
  readonly fallbacks: Counter<'reason'>;
  readonly staleFences: Counter;
  readonly expired: Counter<'by'>;

  constructor(registry: Registry) {
    this.holds = new Counter({
      name: 'seatlock_holds_total',
      help: 'Hold requests by outcome: conflict_redis never reached PostgreSQL',
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
  }
}
