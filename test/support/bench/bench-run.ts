import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { PgCountingProxy } from '../pg-counting-proxy';
import { freePort, RedisServer } from '../redis-server';
import { call } from './bench-http';
import * as pg from './bench-postgres';
import * as proc from './child-processes';
import { type Child, ChildProcesses } from './child-processes';
import { BenchError, logger, withTimeout } from './cli';

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
  name?: string;
  database: string;
  redis: string;
  adminToken?: string;
  gateway?: string;
  /** Over benchApiEnv's environment (LOCK_MODE defaults to redis). */
  env?: NodeJS.ProcessEnv;
  /** Before `npm start`'s own (e.g. --cpu-prof). */
  nodeOptions?: string[];
}

interface GatewayOptions {
  database: string;
  webhookUrl: string;
  secret: string;
  port?: number;
  env?: NodeJS.ProcessEnv;
}

/**
 * One benchmark run: create it at module level, call `main(...)` once. Whatever it sets up (fresh
 * databases, redis-servers, proxies, children) is undone however the run ends: failure, signal,
 * watchdog or exit.
 */
export class BenchRun {
  readonly log: (message: string) => void;
  readonly children: ChildProcesses;
  readonly adminToken = `bench-admin-${randomBytes(16).toString('hex')}`;
  /** Set once the run stops its children: what would start one again must not. */
  stopping = false;
  private readonly resources: Resource[] = [];

  constructor(
    readonly benchmark: string,
    stopTimeoutMs = 10_000,
  ) {
    this.log = logger(benchmark);
    this.children = new ChildProcesses(this.log, stopTimeoutMs);
  }

  /** Runs `main` (it answers the exit code); with --json a failure still ends stdout with JSON. */
  main(main: () => Promise<number>, totalMs: number): void {
    setTimeout(() => {
      this.log(`gave up after ${totalMs / 1000} s`);
      void this.stopAll().finally(() => process.exit(1));
    }, totalMs).unref();
    for (const signal of ['SIGINT', 'SIGTERM'] as const) {
      process.once(signal, () => {
        this.log(`${signal}: stopping the children and cleaning up`);
        void this.stopAll()
          .catch(() => undefined)
          .finally(() => process.exit(130));
      });
    }
    process.on('exit', () => this.killAll());
    const run = async (): Promise<number> => {
      if (!existsSync(proc.API_MAIN)) throw new BenchError('no dist/: run npm run build first');
      try {
        return await main();
      } finally {
        await withTimeout(this.stopAll(), 60_000, 'cleaning up').catch((error: Error) =>
          this.log(error.message),
        );
      }
    };
    run().then(
      (code) => {
        process.exitCode = code;
      },
      async (error: Error) => {
        this.log(error instanceof BenchError ? error.message : (error.stack ?? String(error)));
        await this.stopAll();
        if (process.argv.includes('--json')) {
          const failure = { benchmark: this.benchmark, ok: false, error: error.message };
          process.stdout.write(`${JSON.stringify(failure)}\n`);
        }
        process.exitCode = 1;
      },
    );
  }

  /** Registers `resource`, stopped newest first after the children; answers it. */
  track<T extends Resource>(resource: T): T {
    this.resources.push(resource);
    return resource;
  }

  async stopAll(): Promise<void> {
    this.stopping = true;
    await this.children.stopAll();
    // One that does not stop stays listed: killAll (at exit) kills it.
    for (const resource of [...this.resources].reverse()) {
      await withTimeout(resource.stop(), 15_000, 'stopping').then(
        () => this.resources.splice(this.resources.indexOf(resource), 1),
        (error: Error) => this.log(error.message),
      );
    }
  }

  killAll(): void {
    this.stopping = true;
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
    const database = pg.benchDatabaseName(name);
    this.log(`fresh database ${database}`);
    const url = await withTimeout(pg.recreateDatabase(database), 30_000, `recreating ${database}`);
    this.track({ stop: () => pg.dropDatabase(database) });
    return url;
  }

  async privateRedis(): Promise<RedisServer> {
    return this.track(await RedisServer.start());
  }

  /** REDIS_URL (checked, this machine only) when set, else a private redis-server. */
  async redis(): Promise<{ url: string; server: RedisServer | null }> {
    if (process.env.REDIS_URL) {
      const url = pg.localRedisUrl();
      await pg.requireRedis(url);
      return { url, server: null };
    }
    const server = await this.privateRedis();
    return { url: server.url, server };
  }

  async countingProxy(databaseUrl: string, logStatements = false): Promise<PgCountingProxy> {
    const target = new URL(databaseUrl);
    const port = Number(target.port || 5432);
    return this.track(await PgCountingProxy.start(target.hostname, port, { logStatements }));
  }

  /** The built API as `npm start` runs it, ready on /health/ready. */
  async startApi(options: ApiOptions): Promise<Child> {
    const port = await freePort();
    const env = proc.benchApiEnv({
      PORT: String(port),
      DATABASE_URL: options.database,
      REDIS_URL: options.redis,
      LOCK_MODE: 'redis',
      ADMIN_TOKEN: options.adminToken ?? this.adminToken,
      GATEWAY_URL: options.gateway ?? NO_GATEWAY,
      ...options.env,
    });
    const nodeOptions = [...(options.nodeOptions ?? []), ...proc.apiNodeOptions()];
    const api = this.children.node(options.name ?? 'API', proc.API_MAIN, env, nodeOptions);
    api.url = `http://127.0.0.1:${port}`;
    await waitReady(api, '/health/ready');
    return api;
  }

  async startGateway(options: GatewayOptions): Promise<Child> {
    const port = options.port ?? (await freePort());
    const gateway = this.children.node('gateway simulator', proc.GATEWAY_MAIN, {
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

  /** `work` on an API of its own, stopped afterwards; its last lines logged on a failure. */
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

export function waitReady(child: Child, path: string, timeoutMs = 60_000): Promise<unknown> {
  return proc.waitHealthy(
    child,
    () => call(child.url, 'GET', path, { timeoutMs: 2_000 }),
    timeoutMs,
  );
}
