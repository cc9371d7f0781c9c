import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { Redis } from 'ioredis';

/** A free TCP port on loopback, chosen by the kernel. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address
          ? resolve(address.port)
          : reject(new Error('no port')),
      );
    });
  });
}

/** One raw PING over TCP; answers whether +PONG came back. No client library, no stray timers. */
function pingOnce(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (data) => done(data.toString().startsWith('+PONG')));
  });
}

/** One PING through ioredis with no retries; throws what went wrong (for a clear start-up error). */
export async function pingRedis(url: string, connectTimeoutMs = 2000): Promise<void> {
  const redis = new Redis(url, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    connectTimeout: connectTimeoutMs,
  });
  try {
    await redis.connect();
    await redis.ping();
  } finally {
    redis.disconnect();
  }
}

export async function waitForPing(port: number, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await pingOnce(port))) {
    if (Date.now() > deadline) throw new Error(`redis-server on port ${port} did not start`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * A real `redis-server` process of the test's own, on a free port, so faults (stop, kill, flush,
 * restart) hit nobody else. Needs redis-server on PATH (Debian's package `redis-server`).
 */
export class RedisServer {
  private process?: ChildProcess;

  private constructor(
    readonly port: number,
    private readonly extraArgs: string[] = [],
    private readonly binary = 'redis-server',
  ) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** The server's process id (for CPU accounting), or null before it started. */
  get pid(): number | null {
    return this.process?.pid ?? null;
  }

  /**
   * `extraArgs`, e.g. `['--replicaof', '127.0.0.1', '6379']`, are passed to redis-server;
   * `binary` names another redis-server executable than the one on PATH.
   */
  static async start(extraArgs: string[] = [], binary = 'redis-server'): Promise<RedisServer> {
    if (spawnSync(binary, ['--version']).status !== 0) {
      throw new Error(`${binary} does not run: apt-get install redis-server`);
    }
    const server = new RedisServer(await freePort(), extraArgs, binary);
    await server.restart();
    return server;
  }

  /** Starts (again) on the same port, empty: nothing is persisted. */
  async restart(): Promise<void> {
    this.process = spawn(
      this.binary,
      [
        ...['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
        // A replica's full sync writes an RDB file: keep it out of the working tree.
        ...['--dir', tmpdir()],
        ...this.extraArgs,
      ],
      { stdio: 'ignore' },
    );
    await waitForPing(this.port);
  }

  /** Kills the server outright (SIGKILL) and waits until it is gone. */
  async kill(): Promise<void> {
    const child = this.process;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGKILL');
    });
  }

  /** SIGKILL without waiting: for a caller's 'exit' handler, where nothing asynchronous runs. */
  killSync(): void {
    const child = this.process;
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }

  /** Freezes the server (SIGSTOP): connections stay open, nothing answers. */
  pause(): void {
    this.process?.kill('SIGSTOP');
  }

  resume(): void {
    this.process?.kill('SIGCONT');
  }

  async flushAll(): Promise<void> {
    const client = new Redis(this.url, { maxRetriesPerRequest: 0 });
    try {
      await client.flushall();
    } finally {
      client.disconnect();
    }
  }

  async stop(): Promise<void> {
    await this.kill();
  }
}
