import { Injectable, Logger } from '@nestjs/common';
import { LockProvider } from '@app/lock';

/** A budget: at most `limit` hits per window of `windowMs`; `limit` 0 switches it off. */
export interface RateLimitRule {
  limit: number;
  windowMs: number;
}

export interface RateLimitVerdict {
  allowed: boolean;
  count: number;
  /** Whole seconds until the window ends (what Retry-After says). */
  retryAfterSeconds: number;
}

/** Local windows kept at most; past it the ended ones are dropped, then all (a flood of addresses). */
const LOCAL_MAX = 100_000;

/**
 * Fixed-window counters shared by every instance through Redis, so N instances do not give a
 * client N budgets; while Redis cannot answer, each instance counts alone (a client gets at most one
 * budget per instance, never an unlimited one).
 */
@Injectable()
export class RateLimiter {
  private readonly logger = new Logger(RateLimiter.name);
  private readonly local = new Map<string, { count: number; endsAt: number }>();
  private sharedFailing = false;

  constructor(private readonly lock: LockProvider) {}

  /** Counts one hit (or `hits`) against `bucket`. */
  hit(bucket: string, rule: RateLimitRule, hits = 1): Promise<RateLimitVerdict> {
    return this.count(bucket, rule, hits);
  }

  /** The bucket's verdict without counting anything. */
  peek(bucket: string, rule: RateLimitRule): Promise<RateLimitVerdict> {
    return this.count(bucket, rule, 0);
  }

  private async count(
    bucket: string,
    rule: RateLimitRule,
    hits: number,
  ): Promise<RateLimitVerdict> {
    if (rule.limit <= 0) return { allowed: true, count: 0, retryAfterSeconds: 0 };
    let count: number;
    let leftMs: number;
    try {
      ({ count, windowLeftMs: leftMs } = await this.lock.countHits(
        `rate:${bucket}`,
        hits,
        rule.windowMs,
      ));
      this.sharedFailing = false;
    } catch (error) {
      if (!this.sharedFailing) {
        this.logger.warn(
          `Rate limits counted per instance: Redis cannot count them (${(error as Error).message})`,
        );
      }
      this.sharedFailing = true;
      ({ count, leftMs } = this.countLocally(bucket, rule.windowMs, hits));
    }
    return {
      allowed: count <= rule.limit,
      count,
      retryAfterSeconds: Math.max(1, Math.ceil(leftMs / 1000)),
    };
  }

  private countLocally(
    bucket: string,
    windowMs: number,
    hits: number,
  ): { count: number; leftMs: number } {
    const now = Date.now();
    let window = this.local.get(bucket);
    if (!window || window.endsAt <= now) {
      if (this.local.size >= LOCAL_MAX) this.dropEnded(now);
      window = { count: 0, endsAt: now + windowMs };
      this.local.set(bucket, window);
    }
    window.count += hits;
    return { count: window.count, leftMs: window.endsAt - now };
  }

  private dropEnded(now: number): void {
    for (const [bucket, window] of this.local) if (window.endsAt <= now) this.local.delete(bucket);
    if (this.local.size >= LOCAL_MAX) this.local.clear();
  }
}
