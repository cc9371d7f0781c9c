import type { Registry } from 'prom-client';

export type LockMode = 'redis' | 'off';

export interface LockOptions {
  mode: LockMode;
  /** `redis://host:port/db`; ignored when mode is `off`. */
  redisUrl?: string;
  /** A command that takes longer fails as unavailable; keep it well under any lease TTL. */
  commandTimeoutMs?: number;
  /** How long a fence counter outlives its last use. Safe to expire: tokens are seeded from TIME. */
  fenceCounterTtlMs?: number;
  /** Metrics are registered here when given. */
  registry?: Registry;
  /** Told once per change, so callers can log "Redis unreachable" once rather than per request. */
  onAvailabilityChange?: (available: boolean, reason?: string) => void;
}

export const LOCK_OPTIONS = Symbol('LOCK_OPTIONS');
