import { Counter, Histogram, type Registry } from 'prom-client';

/** The lock provider's own counters; registered on the application's registry when one is given. */
export class LockMetrics {
  readonly acquisitions: Counter<'result'>;
  /** Pre-bound children: a labelled `inc` per call costs a hash lookup on the hot path. */
  readonly acquired: Counter.Internal;
  readonly busy: Counter.Internal;
  readonly unavailable: Counter.Internal;
  readonly acquireSeconds: Histogram;
  readonly releases: Counter;
  readonly renewals: Counter<'result'>;
  readonly losses: Counter<'reason'>;
  readonly ratchets: Counter;

  constructor(registry?: Registry) {
    const registers = registry ? [registry] : [];
    this.acquisitions = new Counter({
      name: 'lock_acquisitions_total',
      help: 'Lock acquire attempts by result (acquired, busy, unavailable)',
      labelNames: ['result'],
      registers,
    });
    this.acquired = this.acquisitions.labels({ result: 'acquired' });
    this.busy = this.acquisitions.labels({ result: 'busy' });
    this.unavailable = this.acquisitions.labels({ result: 'unavailable' });
    this.acquireSeconds = new Histogram({
      name: 'lock_acquire_duration_seconds',
      help: 'Time for one acquire attempt (one round trip, or one per node in redlock mode)',
      buckets: [0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.05, 0.25, 1],
      registers,
    });
    this.releases = new Counter({
      name: 'lock_releases_total',
      help: 'Lease releases sent to Redis',
      registers,
    });
    this.renewals = new Counter({
      name: 'lock_renewals_total',
      help: 'Automatic lease renewals by result (renewed, lost, failed)',
      labelNames: ['result'],
      registers,
    });
    this.losses = new Counter({
      name: 'lock_losses_total',
      help: 'Leases lost while in use, by reason (taken: key gone or another owner; expired: validity deadline passed)',
      labelNames: ['reason'],
      registers,
    });
    this.ratchets = new Counter({
      name: 'lock_fence_ratchets_total',
      help: 'Fence counters raised to a value PostgreSQL already held',
      registers,
    });
  }
}
