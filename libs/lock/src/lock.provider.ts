import { createHash, randomUUID } from 'node:crypto';
import { Redis, ReplyError } from 'ioredis';
import type { Lease } from './lease';
import { LockBusyError, LockLostError, LockUnavailableError } from './lock.errors';
import { LockMetrics } from './lock.metrics';
import type { LockMode, LockOptions } from './lock.options';
import { ACQUIRE_MANY_SCRIPT, EXTEND_SCRIPT, RATCHET_SCRIPT, RELEASE_SCRIPT } from './lock.scripts';

/** Long enough for a busy event loop to read the reply, far shorter than any lease. */
const DEFAULT_COMMAND_TIMEOUT_MS = 1000;
const DEFAULT_FENCE_COUNTER_TTL_MS = 24 * 60 * 60 * 1000;

interface Script {
  source: string;
  sha: string;
}

function script(source: string): Script {
  return { source, sha: createHash('sha1').update(source).digest('hex') };
}

const SCRIPTS = {
  acquireMany: script(ACQUIRE_MANY_SCRIPT),
  release: script(RELEASE_SCRIPT),
  extend: script(EXTEND_SCRIPT),
  ratchet: script(RATCHET_SCRIPT),
};

/**
 * Redis lock provider: keeps contenders away from the database. It is an efficiency layer only —
 * whoever uses it must still make their write conditional and fenced, because a lease can be lost
 * (expiry, Redis restart) without its holder noticing in time.
 */
export class LockProvider {
  readonly mode: LockMode;
  private readonly redis?: Redis;
  private readonly metrics: LockMetrics;
  private readonly fenceCounterTtlMs: number;
  /** Undefined until the first connect or failure, so an unreachable Redis at boot is reported. */
  private available: boolean | undefined;
  private closing = false;

  constructor(private readonly options: LockOptions) {
    this.mode = options.mode;
    this.metrics = new LockMetrics(options.registry);
    this.fenceCounterTtlMs = options.fenceCounterTtlMs ?? DEFAULT_FENCE_COUNTER_TTL_MS;
    if (this.mode === 'off') return;
    if (!options.redisUrl) throw new Error('LockProvider: redisUrl is required in redis mode');
    this.redis = new Redis(options.redisUrl, {
      // A queued SET NX replayed after a reconnect could take a lock nobody waits for: fail instead.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS,
      connectTimeout: 2000,
      disconnectTimeout: 200,
      retryStrategy: (attempt) => Math.min(attempt * 200, 2000),
    });
    this.redis.on('ready', () => this.setAvailable(true));
    this.redis.on('error', (error: Error) => this.setAvailable(false, error.message));
    this.redis.on('close', () => this.setAvailable(false, 'connection closed'));
  }

  /** True while Redis answers; callers use it to report degraded health. */
  isAvailable(): boolean {
    return this.mode === 'redis' && this.available === true;
  }

  /** Round trip to Redis, for health checks. */
  async ping(): Promise<void> {
    await this.call(() => this.client().ping());
  }

  /**
   * Takes every key or none, in one round trip, and mints one fencing token larger than any token
   * minted before for any of the keys. Throws LockBusyError naming the keys held by others.
   */
  async acquireMany(keys: string[], ttlMs: number, owner: string = randomUUID()): Promise<Lease> {
    if (keys.length === 0) throw new RangeError('acquireMany needs at least one key');
    const stop = this.metrics.acquireSeconds.startTimer();
    let reply: [number, number[] | string];
    try {
      reply = (await this.run(
        SCRIPTS.acquireMany,
        [...keys.map((key) => this.lockKey(key)), ...keys.map((key) => this.fenceKey(key))],
        [owner, String(ttlMs), String(Math.max(this.fenceCounterTtlMs, ttlMs))],
      )) as [number, number[] | string];
    } catch (error) {
      this.metrics.acquisitions.inc({ result: 'unavailable' });
      throw error;
    } finally {
      stop();
    }
    if (reply[0] === 0) {
      this.metrics.acquisitions.inc({ result: 'busy' });
      throw new LockBusyError((reply[1] as number[]).map((index) => keys[index - 1]));
    }
    this.metrics.acquisitions.inc({ result: 'acquired' });
    return { keys: [...keys], owner, fence: BigInt(reply[1] as string), ttlMs };
  }

  /** One key, no waiting: for jobs that only one instance should run at a time. */
  async tryAcquire(key: string, ttlMs: number): Promise<Lease | null> {
    try {
      return await this.acquireMany([key], ttlMs);
    } catch (error) {
      if (error instanceof LockBusyError) return null;
      throw error;
    }
  }

  /** Frees the keys this lease still owns; another owner's keys are left alone. Safe to retry. */
  async release(lease: Pick<Lease, 'keys' | 'owner'>): Promise<number> {
    this.metrics.releases.inc();
    const freed = await this.run(
      SCRIPTS.release,
      lease.keys.map((key) => this.lockKey(key)),
      [lease.owner],
    );
    return Number(freed);
  }

  /** Extends every key of the lease, or none; throws LockLostError once any key is gone. */
  async extend(lease: Lease, ttlMs: number = lease.ttlMs): Promise<Lease> {
    const extended = await this.run(
      SCRIPTS.extend,
      lease.keys.map((key) => this.lockKey(key)),
      [lease.owner, String(ttlMs)],
    );
    if (Number(extended) !== 1) throw new LockLostError([...lease.keys]);
    return { ...lease, ttlMs };
  }

  /**
   * Raises the keys' fence counters to at least `fence`: called when PostgreSQL rejected a token as
   * stale, so the next token Redis mints beats the one PostgreSQL holds.
   */
  async ratchet(keys: string[], fence: bigint): Promise<void> {
    this.metrics.ratchets.inc();
    await this.run(
      SCRIPTS.ratchet,
      keys.map((key) => this.fenceKey(key)),
      [fence.toString(), String(this.fenceCounterTtlMs)],
    );
  }

  async close(): Promise<void> {
    if (!this.redis) return;
    this.closing = true;
    // quit() waits for a reply; a client still reconnecting would wait for a server that is gone.
    if (this.redis.status !== 'ready') {
      this.redis.disconnect();
      return;
    }
    try {
      await this.redis.quit();
    } catch {
      this.redis.disconnect();
    }
  }

  private lockKey(key: string): string {
    return `lock:${this.tagged(key)}`;
  }

  private fenceKey(key: string): string {
    return `fence:${this.tagged(key)}`;
  }

  /** Lock key and fence key must hash to one slot; keys without a hash tag get one. */
  private tagged(key: string): string {
    return key.includes('{') ? key : `{${key}}`;
  }

  private client(): Redis {
    if (!this.redis) throw new LockUnavailableError('lock provider is off', 'off');
    return this.redis;
  }

  private async run(target: Script, keys: string[], args: string[]): Promise<unknown> {
    const redis = this.client();
    return this.call(async () => {
      try {
        return await redis.evalsha(target.sha, keys.length, ...keys, ...args);
      } catch (error) {
        if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
        return redis.eval(target.source, keys.length, ...keys, ...args);
      }
    });
  }

  /** Every Redis failure leaves as LockUnavailableError: callers fall back to PostgreSQL alone. */
  private async call<T>(command: () => Promise<T>): Promise<T> {
    if (this.redis && this.redis.status !== 'ready') {
      throw new LockUnavailableError(`Redis is not connected (${this.redis.status})`);
    }
    try {
      const result = await command();
      this.setAvailable(true);
      return result;
    } catch (error) {
      if (error instanceof LockUnavailableError) throw error;
      const message = error instanceof Error ? error.message : String(error);
      // A reply error means Redis answered; anything else (closed socket, timeout) means it did not.
      if (!(error instanceof ReplyError)) this.setAvailable(false, message);
      const reason = /timed out/i.test(message) ? 'timeout' : 'unreachable';
      throw new LockUnavailableError(`Redis command failed: ${message}`, reason, { cause: error });
    }
  }

  private setAvailable(available: boolean, reason?: string): void {
    // Our own quit is not an outage.
    if (this.closing || this.available === available) return;
    this.available = available;
    this.options.onAvailabilityChange?.(available, reason);
  }
}
