import { createHash, randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { Cluster, Redis, type RedisOptions, ReplyError } from 'ioredis';
import type { Lease, LeaseContext } from './lease';
import { LockBusyError, LockLostError, LockUnavailableError } from './lock.errors';
import { LockMetrics } from './lock.metrics';
import type { AcquireOptions, LockMode, LockOptions } from './lock.options';
import {
  ACQUIRE_MANY_SCRIPT,
  COUNT_HITS_SCRIPT,
  EXTEND_SCRIPT,
  RATCHET_SCRIPT,
  RELEASE_SCRIPT,
  RETURN_PERMITS_SCRIPT,
  TAKE_PERMITS_SCRIPT,
} from './lock.scripts';

/** Long enough for a busy event loop to read the reply, far shorter than any lease. */
const DEFAULT_COMMAND_TIMEOUT_MS = 1000;
const DEFAULT_FENCE_COUNTER_TTL_MS = 24 * 60 * 60 * 1000;
const DEFAULT_DRIFT_FACTOR = 0.01;
const BACKOFF_BASE_MS = 5;
const BACKOFF_CAP_MS = 500;

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
  takePermits: script(TAKE_PERMITS_SCRIPT),
  returnPermits: script(RETURN_PERMITS_SCRIPT),
  countHits: script(COUNT_HITS_SCRIPT),
};

/**
 * One Redis server: its client, whether it last answered, and a consecutive-failure circuit breaker
 * (kept inline: it sits on every call of the hot path, where a general-purpose policy wrapper cost
 * a measurable share of throughput).
 */
interface RedisNode {
  readonly name: string;
  readonly client: Redis;
  available: boolean;
  failures: number;
  /** While performance.now() is below this, calls fail at once without asking Redis. */
  openUntil: number;
}

/**
 * `redis://` and `rediss://` URLs go to ioredis as they are. Two more forms name a topology:
 * `redis-sentinel://host:port[,host:port…]/<master name>` and `redis-cluster://host:port[,host:port…]`.
 * Both clients answer the commands used here (EVALSHA, EVAL, PING) the same way; every call's keys
 * share one hash slot, so cluster routing is by that slot.
 */
export function createRedisClient(url: string, options: RedisOptions): Redis {
  const topology = /^(redis-sentinel|redis-cluster):\/\/([^/]+)(?:\/(.+))?$/.exec(url);
  if (!topology) return new Redis(url, options);
  const [, kind, hostList, name] = topology;
  const defaultPort = kind === 'redis-sentinel' ? 26379 : 6379;
  const hosts = hostList.split(',').map((entry) => {
    const [host, port] = entry.split(':');
    return { host, port: port ? Number(port) : defaultPort };
  });
  if (kind === 'redis-sentinel') {
    return new Redis({ ...options, sentinels: hosts, name: name ?? 'mymaster' });
  }
  const { enableOfflineQueue, retryStrategy, ...nodeOptions } = options;
  const cluster = new Cluster(hosts, {
    enableOfflineQueue,
    clusterRetryStrategy: retryStrategy,
    redisOptions: nodeOptions,
  });
  // The subset used here (evalsha, eval, ping, quit, disconnect, status, events) is common to both.
  return cluster as unknown as Redis;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Redis lock provider: keeps contenders away from the database. It is an efficiency layer only —
 * whoever uses it must still make their writes conditional and fenced, because a lease can be lost
 * (expiry, a pause, a Redis restart) without its holder noticing in time.
 *
 * Mode `redis` talks to one server; mode `redlock` to N independent ones and needs a majority for
 * every acquire and extend. Every lease carries a validity deadline on the monotonic clock, taken
 * from before the request was sent, less a drift allowance: past it the lease is treated as lost
 * whatever Redis says, so a holder cut off from Redis still knows when to stop.
 */
export class LockProvider {
  readonly mode: LockMode;
  /** Nodes that must agree: 1 for a single server, a majority in redlock mode. */
  readonly quorum: number;
  private readonly nodes: RedisNode[];
  private readonly metrics: LockMetrics;
  private readonly fenceCounterTtlMs: number;
  private readonly driftFactor: number;
  private readonly breakerThreshold: number;
  private readonly breakerHalfOpenAfterMs: number;
  /** Undefined until the first connect or failure, so an unreachable Redis at boot is reported. */
  private available: boolean | undefined;
  private closing = false;

  constructor(private readonly options: LockOptions) {
    this.mode = options.mode;
    this.metrics = new LockMetrics(options.registry);
    this.fenceCounterTtlMs = options.fenceCounterTtlMs ?? DEFAULT_FENCE_COUNTER_TTL_MS;
    this.driftFactor = options.driftFactor ?? DEFAULT_DRIFT_FACTOR;
    this.breakerThreshold = options.breakerThreshold ?? 5;
    this.breakerHalfOpenAfterMs = options.breakerHalfOpenAfterMs ?? 1000;
    const urls = this.urlsFor(options);
    this.nodes = urls.map((url, index) => this.connect(url, index));
    this.quorum = Math.floor(this.nodes.length / 2) + 1;
  }

  /** True while a quorum of Redis nodes answers; callers use it to report degraded health. */
  isAvailable(): boolean {
    return this.mode !== 'off' && this.available === true;
  }

  /** A round trip to every node; throws unless a quorum answered. For health checks. */
  async ping(): Promise<void> {
    const results = await Promise.allSettled(
      this.requireNodes().map((node) => this.call(node, () => node.client.ping())),
    );
    const answered = results.filter((r) => r.status === 'fulfilled').length;
    if (answered < this.quorum) {
      throw new LockUnavailableError(`${answered} of ${this.nodes.length} Redis nodes answered`);
    }
  }

  /**
   * Takes every key or none, in one round trip per node, and mints one fencing token larger than any
   * token minted before for any of the keys. Throws LockBusyError naming the keys held by others.
   */
  acquireMany(keys: string[], ttlMs: number, owner: string = randomUUID()): Promise<Lease> {
    if (keys.length === 0)
      return Promise.reject(new RangeError('acquireMany needs at least one key'));
    if (this.mode === 'off') return Promise.reject(this.offError());
    // Not async itself: on the single-node hot path this saves a promise frame per call.
    const scriptKeys = new Array<string>(keys.length * 2);
    for (let i = 0; i < keys.length; i += 1) {
      scriptKeys[i] = this.lockKey(keys[i]);
      scriptKeys[keys.length + i] = this.fenceKey(keys[i]);
    }
    const args = [owner, String(ttlMs), String(Math.max(this.fenceCounterTtlMs, ttlMs))];
    const started = performance.now();
    const validUntil = started + ttlMs - this.drift(ttlMs);
    return this.nodes.length === 1
      ? this.acquireOnOne(this.nodes[0], keys, scriptKeys, args, started, validUntil)
      : this.acquireOnQuorum(keys, scriptKeys, args, started, validUntil);
  }

  private async acquireOnQuorum(
    keys: string[],
    scriptKeys: string[],
    args: string[],
    started: number,
    validUntil: number,
  ): Promise<Lease> {
    const nodes = this.nodes;
    const [owner, ttl] = args;
    const ttlMs = Number(ttl);
    const results = await Promise.allSettled(
      nodes.map((node) => this.run(node, SCRIPTS.acquireMany, scriptKeys, args)),
    );
    this.metrics.acquireSeconds.observe((performance.now() - started) / 1000);

    const acquired: { node: RedisNode; fence: bigint }[] = [];
    const busyKeys = new Set<string>();
    let answered = 0;
    let lastError: unknown;
    results.forEach((result, index) => {
      if (result.status === 'rejected') {
        lastError = result.reason;
        return;
      }
      answered += 1;
      const [ok, detail] = result.value as [number, number[] | string];
      if (ok === 1) acquired.push({ node: nodes[index], fence: BigInt(detail as string) });
      else for (const position of detail as number[]) busyKeys.add(keys[position - 1]);
    });

    if (acquired.length >= this.quorum && performance.now() < validUntil) {
      const fence = acquired.reduce((max, a) => (a.fence > max ? a.fence : max), 0n);
      // Nodes minted their own tokens; raise the lower ones so any later majority beats this one.
      void this.raiseCounters(
        acquired.map((a) => a.node),
        keys,
        fence,
      );
      this.metrics.acquired.inc();
      return { keys: [...keys], owner, fence, ttlMs, validUntil };
    }

    // No majority (or too slow): give back what was taken, in the background.
    if (acquired.length > 0) {
      void this.releaseOn(
        acquired.map((a) => a.node),
        keys,
        owner,
      ).catch(() => 0);
    }
    if (answered >= this.quorum && busyKeys.size > 0) {
      this.metrics.busy.inc();
      throw LockBusyError.of(keys.filter((key) => busyKeys.has(key)));
    }
    this.metrics.unavailable.inc();
    if (lastError instanceof LockUnavailableError && answered === 0) throw lastError;
    throw new LockUnavailableError(
      `only ${acquired.length} of ${nodes.length} Redis nodes granted the lock (quorum ${this.quorum})`,
      lastError instanceof LockUnavailableError ? lastError.reason : 'timeout',
    );
  }

  /** The common case, one server: one round trip, no fan-out bookkeeping. */
  private async acquireOnOne(
    node: RedisNode,
    keys: string[],
    scriptKeys: string[],
    args: string[],
    started: number,
    validUntil: number,
  ): Promise<Lease> {
    let reply: [number, number[] | string];
    try {
      reply = (await this.run(node, SCRIPTS.acquireMany, scriptKeys, args)) as typeof reply;
    } catch (error) {
      this.metrics.unavailable.inc();
      throw error;
    } finally {
      this.metrics.acquireSeconds.observe((performance.now() - started) / 1000);
    }
    if (reply[0] !== 1) {
      this.metrics.busy.inc();
      throw LockBusyError.of((reply[1] as number[]).map((position) => keys[position - 1]));
    }
    if (performance.now() >= validUntil) {
      void this.releaseOn([node], keys, args[0]).catch(() => 0);
      this.metrics.unavailable.inc();
      throw new LockUnavailableError('the lease expired before Redis answered', 'timeout');
    }
    this.metrics.acquired.inc();
    return {
      keys: [...keys],
      owner: args[0],
      fence: BigInt(reply[1] as string),
      ttlMs: Number(args[1]),
      validUntil,
    };
  }

  /**
   * Takes `count` permits from a counter (a counting semaphore without owners), or says how many are
   * left. A missing counter is seeded from `seed()` (the caller's source of truth) with a TTL of
   * `seedTtlMs`, so it is re-read from that source at least that often. On the first node only, also
   * in redlock mode: a counter is an admission filter in front of a database that decides, not a lock.
   * `seeded`: this call found the counter missing (and so asked `seed()`).
   */
  async takePermits(
    key: string,
    count: number,
    seed: () => Promise<number>,
    seedTtlMs: number,
  ): Promise<{ taken: boolean; left: number; seeded: boolean }> {
    const node = this.requireNodes()[0];
    const permitKey = `permits:${this.tagged(key)}`;
    let reply = (await this.run(node, SCRIPTS.takePermits, [permitKey], [String(count)])) as [
      number,
      number,
    ];
    const seeded = reply[0] === -1;
    if (seeded) {
      const available = await seed();
      reply = (await this.run(
        node,
        SCRIPTS.takePermits,
        [permitKey],
        [String(count), String(available), String(seedTtlMs)],
      )) as [number, number];
    }
    return { taken: reply[0] === 1, left: Number(reply[1]), seeded };
  }

  /** Gives permits back (a claim that did not go through, a release); dropped if the counter is gone. */
  async returnPermits(key: string, count: number): Promise<void> {
    const node = this.requireNodes()[0];
    await this.run(node, SCRIPTS.returnPermits, [`permits:${this.tagged(key)}`], [String(count)]);
  }

  /**
   * Adds `hits` to a fixed window of `windowMs` shared by every instance (rate limits), on the
   * first node only, like the permit counters: a filter in front of the service, not a lock.
   * `hits` 0 reads the count. Throws LockUnavailableError when Redis cannot answer.
   */
  async countHits(
    key: string,
    hits: number,
    windowMs: number,
  ): Promise<{ count: number; windowLeftMs: number }> {
    const node = this.requireNodes()[0];
    const [count, left] = (await this.run(
      node,
      SCRIPTS.countHits,
      [`hits:${this.tagged(key)}`],
      [String(hits), String(windowMs)],
    )) as [number, number];
    return { count: Number(count), windowLeftMs: Number(left) };
  }

  /** A small value every instance can read for `ttlMs` (a cache, never a source of truth). */
  async remember(key: string, value: string, ttlMs: number): Promise<void> {
    const node = this.requireNodes()[0];
    await this.call(node, () => node.client.set(`value:${this.tagged(key)}`, value, 'PX', ttlMs));
  }

  /** What `remember` stored, or null when it is gone (expired, flushed). */
  async recall(key: string): Promise<string | null> {
    const node = this.requireNodes()[0];
    return this.call(node, () => node.client.get(`value:${this.tagged(key)}`));
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

  /**
   * Acquires, retrying while busy for up to `waitMs` with full-jitter exponential backoff. Throws
   * LockBusyError when the wait runs out, the signal's reason when aborted, and LockUnavailableError
   * at once when Redis cannot be asked.
   */
  async acquire(keys: string | string[], options: AcquireOptions): Promise<Lease> {
    const list = Array.isArray(keys) ? keys : [keys];
    const owner = options.owner ?? randomUUID();
    const deadline = performance.now() + (options.waitMs ?? 0);
    for (let attempt = 0; ; attempt += 1) {
      options.signal?.throwIfAborted();
      try {
        return await this.acquireMany(list, options.ttlMs, owner);
      } catch (error) {
        const remaining = deadline - performance.now();
        if (!(error instanceof LockBusyError) || remaining <= 0) throw error;
        const backoff = Math.random() * Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** attempt);
        try {
          await sleep(Math.min(backoff, remaining), undefined, { signal: options.signal });
        } catch (aborted) {
          // Surface the caller's own reason rather than a generic AbortError.
          options.signal?.throwIfAborted();
          throw aborted;
        }
      }
    }
  }

  /**
   * Runs `work` while holding the keys, renewing the lease every ttl/3. The context's signal fires —
   * and stays fired — when a renewal finds the key gone or taken, or when the validity deadline passes
   * (even if Redis cannot be reached to find out). The lease is released afterwards; after a loss the
   * release runs in the background so it never holds the caller up.
   */
  async using<T>(
    keys: string | string[],
    options: AcquireOptions,
    work: (context: LeaseContext) => Promise<T>,
  ): Promise<T> {
    let lease = await this.acquire(keys, options);
    const controller = new AbortController();
    let renewTimer: NodeJS.Timeout | undefined;
    let deadlineTimer: NodeJS.Timeout | undefined;
    let finished = false;

    const lose = (reason: 'taken' | 'expired'): void => {
      if (controller.signal.aborted) return;
      clearTimeout(renewTimer);
      clearTimeout(deadlineTimer);
      this.metrics.losses.inc({ reason });
      controller.abort(new LockLostError([...lease.keys]));
    };
    const armDeadline = (): void => {
      clearTimeout(deadlineTimer);
      deadlineTimer = setTimeout(
        () => lose('expired'),
        Math.max(0, lease.validUntil - performance.now()),
      );
    };
    const renew = async (): Promise<void> => {
      if (finished || controller.signal.aborted) return;
      try {
        lease = await this.extend(lease);
        this.metrics.renewals.inc({ result: 'renewed' });
        if (!controller.signal.aborted) armDeadline();
      } catch (error) {
        if (error instanceof LockLostError) {
          this.metrics.renewals.inc({ result: 'lost' });
          lose(performance.now() >= lease.validUntil ? 'expired' : 'taken');
          return;
        }
        // Redis unreachable: keep trying; the deadline timer decides when the lease is gone.
        this.metrics.renewals.inc({ result: 'failed' });
      }
      if (!finished && !controller.signal.aborted) {
        renewTimer = setTimeout(() => void renew(), lease.ttlMs / 3);
      }
    };
    armDeadline();
    renewTimer = setTimeout(() => void renew(), lease.ttlMs / 3);

    const context: LeaseContext = {
      signal: controller.signal,
      fence: lease.fence,
      get lease() {
        return lease;
      },
      assertHeld: () => {
        if (!controller.signal.aborted && performance.now() >= lease.validUntil) lose('expired');
        if (controller.signal.aborted) throw new LockLostError([...lease.keys]);
      },
    };
    try {
      return await work(context);
    } finally {
      finished = true;
      clearTimeout(renewTimer);
      clearTimeout(deadlineTimer);
      const releasing = this.release(lease).catch(() => 0);
      if (!controller.signal.aborted) await releasing;
    }
  }

  /**
   * `using` for work that PostgreSQL keeps correct on its own (background jobs, a payment step): the
   * lock only keeps instances from doing it twice at once. With the lock off or Redis unreachable,
   * `work` runs anyway, without a lease or signal; when another holder has the key, `onBusy` answers.
   */
  async usingOrAlone<T, B = T>(
    key: string,
    options: AcquireOptions,
    work: (signal?: AbortSignal) => Promise<T>,
    onBusy: () => B,
  ): Promise<T | B> {
    if (this.mode === 'off') return work();
    try {
      return await this.using(key, options, ({ signal }) => work(signal));
    } catch (error) {
      if (error instanceof LockBusyError) return onBusy();
      if (error instanceof LockUnavailableError) return work();
      throw error;
    }
  }

  /** Frees the keys this lease still owns; another owner's keys are left alone. Safe to retry. */
  release(lease: Pick<Lease, 'keys' | 'owner'>): Promise<number> {
    if (this.mode === 'off') return Promise.reject(this.offError());
    this.metrics.releases.inc();
    return this.releaseOn(this.nodes, lease.keys, lease.owner);
  }

  /**
   * Extends every key of the lease on a quorum of nodes, or throws: LockLostError once the lease is
   * past its deadline or a quorum no longer has it (an expired lease is never revived),
   * LockUnavailableError when too few nodes answered to tell.
   */
  async extend(lease: Lease, ttlMs: number = lease.ttlMs): Promise<Lease> {
    if (performance.now() >= lease.validUntil) throw new LockLostError([...lease.keys]);
    const nodes = this.requireNodes();
    const started = performance.now();
    const results = await Promise.allSettled(
      nodes.map((node) =>
        this.run(
          node,
          SCRIPTS.extend,
          lease.keys.map((key) => this.lockKey(key)),
          [lease.owner, String(ttlMs)],
        ),
      ),
    );
    const extended = results.filter(
      (r) => r.status === 'fulfilled' && Number(r.value) === 1,
    ).length;
    const refused = results.filter((r) => r.status === 'fulfilled' && Number(r.value) !== 1).length;
    const validUntil = started + ttlMs - this.drift(ttlMs);
    if (extended >= this.quorum && performance.now() < validUntil) {
      return { ...lease, ttlMs, validUntil };
    }
    if (refused > nodes.length - this.quorum || performance.now() >= lease.validUntil) {
      throw new LockLostError([...lease.keys]);
    }
    throw new LockUnavailableError(
      `only ${extended} of ${nodes.length} Redis nodes extended the lease`,
    );
  }

  /**
   * Raises the keys' fence counters to at least `fence`: called when PostgreSQL refused a token as
   * stale, so the next token Redis mints beats the one PostgreSQL holds.
   */
  async ratchet(keys: string[], fence: bigint): Promise<void> {
    this.metrics.ratchets.inc();
    const raised = await this.raiseCounters(this.requireNodes(), keys, fence);
    if (raised === 0) throw new LockUnavailableError('no Redis node took the ratchet');
  }

  async close(): Promise<void> {
    this.closing = true;
    await Promise.all(
      this.nodes.map(async (node) => {
        // quit() waits for a reply; a client still reconnecting would wait for a server that is gone.
        if (node.client.status !== 'ready') {
          node.client.disconnect();
          return;
        }
        try {
          await node.client.quit();
        } catch {
          node.client.disconnect();
        }
      }),
    );
  }

  private urlsFor(options: LockOptions): string[] {
    if (options.mode === 'off') return [];
    if (options.mode === 'redlock') {
      const urls = options.redisUrls ?? [];
      if (urls.length === 0)
        throw new Error('LockProvider: redisUrls are required in redlock mode');
      return urls;
    }
    if (!options.redisUrl) throw new Error('LockProvider: redisUrl is required in redis mode');
    return [options.redisUrl];
  }

  private connect(url: string, index: number): RedisNode {
    const client = createRedisClient(url, {
      // A queued SET NX replayed after a reconnect could take a lock nobody waits for: fail instead.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: this.options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS,
      connectTimeout: 2000,
      disconnectTimeout: 200,
      retryStrategy: (attempt) => Math.min(attempt * 200, 2000),
    });
    const node: RedisNode = {
      name: this.options.mode === 'redlock' ? `node ${index + 1}` : 'Redis',
      client,
      available: false,
      failures: 0,
      openUntil: 0,
    };
    client.on('ready', () => this.setNodeAvailable(node, true));
    client.on('error', (error: Error) => this.setNodeAvailable(node, false, error.message));
    client.on('close', () => this.setNodeAvailable(node, false, 'connection closed'));
    return node;
  }

  private requireNodes(): RedisNode[] {
    if (this.mode === 'off') throw this.offError();
    return this.nodes;
  }

  private offError(): LockUnavailableError {
    return new LockUnavailableError('lock provider is off', 'off');
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

  private drift(ttlMs: number): number {
    return ttlMs * this.driftFactor + 2;
  }

  private releaseOn(nodes: RedisNode[], keys: readonly string[], owner: string): Promise<number> {
    const lockKeys = keys.map((key) => this.lockKey(key));
    if (nodes.length === 1)
      return this.run(nodes[0], SCRIPTS.release, lockKeys, [owner]).then(Number);
    return this.releaseOnQuorum(nodes, lockKeys, owner);
  }

  private async releaseOnQuorum(
    nodes: RedisNode[],
    lockKeys: string[],
    owner: string,
  ): Promise<number> {
    const results = await Promise.allSettled(
      nodes.map((node) => this.run(node, SCRIPTS.release, lockKeys, [owner])),
    );
    const freed = results.flatMap((r) => (r.status === 'fulfilled' ? [Number(r.value)] : []));
    if (freed.length === 0) throw (results[0] as PromiseRejectedResult).reason;
    return Math.max(...freed);
  }

  /** Answers on how many nodes the counters were raised. */
  private async raiseCounters(nodes: RedisNode[], keys: string[], fence: bigint): Promise<number> {
    const results = await Promise.allSettled(
      nodes.map((node) =>
        this.run(
          node,
          SCRIPTS.ratchet,
          keys.map((key) => this.fenceKey(key)),
          [fence.toString(), String(this.fenceCounterTtlMs)],
        ),
      ),
    );
    return results.filter((r) => r.status === 'fulfilled').length;
  }

  /** One script on one node, in a single async frame: this is the hot path of every call. */
  private async run(
    node: RedisNode,
    target: Script,
    keys: string[],
    args: string[],
  ): Promise<unknown> {
    this.admit(node);
    try {
      let result: unknown;
      try {
        result = await node.client.evalsha(target.sha, keys.length, ...keys, ...args);
      } catch (error) {
        if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
        result = await node.client.eval(target.source, keys.length, ...keys, ...args);
      }
      this.succeeded(node);
      return result;
    } catch (error) {
      throw this.failed(node, error);
    }
  }

  /** Every Redis failure leaves as LockUnavailableError: callers fall back to PostgreSQL alone. */
  private async call<T>(node: RedisNode, command: () => Promise<T>): Promise<T> {
    this.admit(node);
    try {
      const result = await command();
      this.succeeded(node);
      return result;
    } catch (error) {
      throw this.failed(node, error);
    }
  }

  /**
   * Refuses at once when the node is disconnected or its circuit is open (after repeated failures,
   * so callers do not each wait for a timeout); after the pause one call goes through to probe.
   */
  private admit(node: RedisNode): void {
    if (node.client.status !== 'ready') {
      throw new LockUnavailableError(`${node.name} is not connected (${node.client.status})`);
    }
    if (node.openUntil > 0 && performance.now() < node.openUntil) {
      throw new LockUnavailableError(`${node.name}: circuit open after repeated failures`);
    }
  }

  private succeeded(node: RedisNode): void {
    node.failures = 0;
    node.openUntil = 0;
    if (!node.available) this.setNodeAvailable(node, true);
  }

  private failed(node: RedisNode, error: unknown): Error {
    const message = messageOf(error);
    // A reply error means Redis answered; anything else (closed socket, timeout) means it did not.
    if (!(error instanceof ReplyError)) {
      node.failures += 1;
      if (node.failures >= this.breakerThreshold) {
        node.openUntil = performance.now() + this.breakerHalfOpenAfterMs;
      }
      this.setNodeAvailable(node, false, message);
    }
    const reason = /timed out/i.test(message) ? 'timeout' : 'unreachable';
    return new LockUnavailableError(`${node.name}: ${message}`, reason, { cause: error });
  }

  private setNodeAvailable(node: RedisNode, available: boolean, reason?: string): void {
    if (node.available === available && this.available !== undefined) return;
    node.available = available;
    const quorate = this.nodes.filter((n) => n.available).length >= this.quorum;
    // Our own quit is not an outage.
    if (this.closing || this.available === quorate) return;
    this.available = quorate;
    this.options.onAvailabilityChange?.(quorate, reason && `${node.name}: ${reason}`);
  }
}
