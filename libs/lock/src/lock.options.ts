import type { Registry } from 'prom-client';

export type LockMode = 'redis' | 'redlock' | 'off';

export interface LockOptions {
  mode: LockMode;
  /** `redis://host:port/db` for mode `redis`. */
  redisUrl?: string;
  /** Independent nodes for mode `redlock` (an odd number, usually 3 or 5). */
  redisUrls?: string[];
  /** A command that takes longer fails as unavailable; keep it well under any lease TTL. */
  commandTimeoutMs?: number;
  /** How long a fence counter outlives its last use. Safe to expire: tokens are seeded from TIME. */
  fenceCounterTtlMs?: number;
  /** Clock drift allowance as a share of the TTL (plus 2 ms), taken off every lease's validity. */
  driftFactor?: number;
  /** Consecutive failures that open a node's circuit breaker, and how long it stays open. */
  breakerThreshold?: number;
  breakerHalfOpenAfterMs?: number;
  /** Metrics are registered here when given. */
  registry?: Registry;
  /** Told once per change, so callers can log "Redis unreachable" once rather than per request. */
  onAvailabilityChange?: (available: boolean, reason?: string) => void;
}

export interface AcquireOptions {
  ttlMs: number;
  /** How long to keep trying while the key is busy (full-jitter exponential backoff). 0: try once. */
  waitMs?: number;
  /** Gives up waiting when aborted. */
  signal?: AbortSignal;
  /** Owner value to store; random when omitted. */
  owner?: string;
}

export const LOCK_OPTIONS = Symbol('LOCK_OPTIONS');
