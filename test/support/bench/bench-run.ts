import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { PgCountingProxy } from '../pg-counting-proxy';
import { freePort, RedisServer } from '../redis-server';
import { call } from './bench-http';
import {
  benchDatabaseName,
  dropDatabase,
  localRedisUrl,
  recreateDatabase,
  requireRedis,
} from './bench-postgres';
import {
  API_MAIN,
  apiNodeOptions,
  benchApiEnv,
  type Child,
  ChildProcesses,
  GATEWAY_MAIN,
  waitHealthy,
} from './child-processes';
import { BenchError, logger, runBenchmarkMain, withTimeout } from './cli';

/*
 * One benchmark run: its logger, its children, and what it set up (fresh databases, a private
 * redis-server, a counting proxy), each stopped or dropped at the end, on a failure, on a signal.
 * The API and the gateway simulator start here, the same way for every benchmark.
 */

/** Something the run stops at its end; `killSync` is for a process 'exit' handler. */
export interface Resource {
  stop(): Promise<unknown>;
  killSync?(): void;
}

/** A port nothing listens on: an API without payments must not start a simulator of its own. */
export const NO_GATEWAY = 'http://127.0.0.1:9';
/** An hour, in ms: for the background jobs and polls whose work must not count. */
export const HOUR_MS = '3600000';

export interface ApiOptions {
  /** The child's name in the log (default 'API'). */
  name?: string;
  database: string;
  redis: string;
  /** Default: the run's admin token. */
  adminToken?: string;
  /** Default NO_GATEWAY. */
  gateway?: string;
  /** Added to, or overriding, benchApiEnv's environment (LOCK_MODE defaults to redis). */
  env?: NodeJS.ProcessEnv;
  /** Node options before `npm start`'s own (e.g. --cpu-prof). */
  nodeOptions?: string[];
}

export interface GatewayOptions {
  database: string;
  /** Where it sends its webhooks (the API's /payments/webhook). */
  webhookUrl: string;
  secret: string;
  port?: number;
  env?: NodeJS.ProcessEnv;
}

/**
 * A benchmark run. Create it at module level (`new BenchRun('flash')`), call `main(...)` once;
 * inside, set up with its methods: everything is undone when the run ends, however it ends.
 */
export class BenchRun {
  readonly log: (message: string) => void;
  readonly children: ChildProcesses;
  /** Random per run: the APIs this run starts accept it. */
  readonly adminToken = `bench-admin-${randomBytes(16).toString('hex')}`;
  private readonly resources: Resource[] = [];

  constructor(
    readonly benchmark: string,
    stopTimeoutMs = 10_000,
  ) {
    this.log = logger(benchmark);
    this.children = new ChildProcesses(this.log, stopTimeoutMs);
  }

  /**
   * Runs `main` (it answers the exit code) under runBenchmarkMain, after checking the build; then
   * stops and drops what the run set up, whatever `main` did.
   */
  main(main: () => Promise<number>, totalMs: number): void {
    const run = async (): Promise<number> => {
      if (!existsSync(API_MAIN)) throw new BenchError('no dist/: run npm run build first');
      try {
        return await main();
      } finally {
        await withTimeout(this.stopAll(), 60_000, 'cleaning up').catch((error: Error) =>
          this.log(error.message),
        );
      }
    };
    runBenchmarkMain({ benchmark: this.benchmark, main: run, children: this, totalMs });
  }

  /** Registers `resource`, stopped newest first after the children; answers it. */
  track<T extends Resource>(resource: T): T {
    this.resources.push(resource);
    return resource;
  }

  /** The children first (they use the rest), then every resource, newest first. */
  async stopAll(): Promise<void> {
    await this.children.stopAll();
    for (const resource of this.resources.splice(0).reverse()) {
      await withTimeout(resource.stop(), 15_000, 'stopping').catch((error: Error) =>
        this.log(error.message),
      );
    }
  }

  killAll(): void {
    this.children.killAll();
    for (const resource of this.resources.splice(0).reverse()) {
      try {
        resource.killSync?.();
      } catch {
        // already gone
      }
    }
  }

  /** Drops and creates `benchDatabaseName(name)`, dropped again at the end; answers its URL. */
  async freshDatabase(name: string): Promise<string> {
    const database = benchDatabaseName(name);
    this.log(`fresh database ${database}`);
    const url = await withTimeout(recreateDatabase(database), 30_000, `recreating ${database}`);
    this.track({ stop: () => dropDatabase(database) });
    return url;
  }

  /** A redis-server of the run's own (flushed or stopped at will), stopped at the end. */
  async privateRedis(): Promise<RedisServer> {
    return this.track(await RedisServer.start());
  }

  /** REDIS_URL (checked, this machine only) when set, else a private redis-server. */
  async redis(): Promise<{ url: string; server: RedisServer | null }> {
    if (process.env.REDIS_URL) {
      const url = localRedisUrl();
      await requireRedis(url);
      return { url, server: null };
    }
    const server = await this.privateRedis();
    return { url: server.url, server };
  }

  /** A PgCountingProxy in front of `databaseUrl`'s server, stopped at the end. */
  async countingProxy(databaseUrl: string, logStatements = false): Promise<PgCountingProxy> {
    const target = new URL(databaseUrl);
    const port = Number(target.port || 5432);
    return this.track(await PgCountingProxy.start(target.hostname, port, { logStatements }));
  }

  /** The built API as `npm start` runs it (benchApiEnv), ready on /health/ready; `url` set. */
  async startApi(options: ApiOptions): Promise<Child> {
    const port = await freePort();
    const env = benchApiEnv({
      PORT: String(port),
      DATABASE_URL: options.database,
      REDIS_URL: options.redis,
      LOCK_MODE: 'redis',
      ADMIN_TOKEN: options.adminToken ?? this.adminToken,
      GATEWAY_URL: options.gateway ?? NO_GATEWAY,
      ...options.env,
    });
    const nodeOptions = [...(options.nodeOptions ?? []), ...apiNodeOptions()];
    const api = this.children.node(options.name ?? 'API', API_MAIN, env, nodeOptions);
    api.url = `http://127.0.0.1:${port}`;
    await waitReady(api, '/health/ready');
    return api;
  }

  /** The built gateway simulator on a database of its own, ready on /health; `url` set. */
  async startGateway(options: GatewayOptions): Promise<Child> {
    const port = options.port ?? (await freePort());
    const gateway = this.children.node('gateway simulator', GATEWAY_MAIN, {
      ...process.env,
      GATEWAY_PORT: String(port),
      GATEWAY_HOST: '127.0.0.1',
      GATEWAY_LOG_LEVEL: 'warn',
      GATEWAY_DATABASE_URL: options.database,
      GATEWAY_WEBHOOK_SECRET: options.secret,
      GATEWAY_WEBHOOK_URL: options.webhookUrl,
      ...options.env,
    });
    gateway.url = `http://127.0.0.1:${port}`;
    await waitReady(gateway, '/health');
    return gateway;
  }

  /**
   * `work` on an API started with `options`, stopped afterwards; on a failure its last lines are
   * logged first.
   */
  async withApi<T>(options: ApiOptions, work: (api: Child) => Promise<T>): Promise<T> {
    const api = await this.startApi(options);
    try {
      return await work(api);
    } catch (error) {
      if (api.tail.length) this.log(`last ${api.name} output:\n${api.tail.join('\n')}`);
      throw error;
    } finally {
      await this.children.stop(api);
    }
  }
}

/** Until GET `path` on `child.url` answers 200 (fails at once if the child exits meanwhile). */
export function waitReady(child: Child, path: string, timeoutMs = 60_000): Promise<unknown> {
  return waitHealthy(child, () => call(child.url, 'GET', path, { timeoutMs: 2_000 }), timeoutMs);
}
