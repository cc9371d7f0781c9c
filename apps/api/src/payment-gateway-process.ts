import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';

/** The built simulator beside the built API: dist/apps/{api,gateway-sim}/apps/<app>/src/main.js. */
const BUILT_SIMULATOR = resolve(__dirname, '../../../../gateway-sim/apps/gateway-sim/src/main.js');

/**
 * Runs in the child before the simulator's main: once our end of its stdin closes (this process is
 * gone, however it died, SIGKILL included) it shuts down gracefully instead of squatting its port.
 */
const ORPHAN_GUARD =
  "process.stdin.on('end', () => process.kill(process.pid, 'SIGTERM')).resume();" +
  'require(process.argv[1]);';

const KEPT_LINES = 40;

export interface GatewayProcessOptions {
  port: number;
  /** Where it listens and is reached; default 127.0.0.1. */
  host?: string;
  /** Over this process's environment. */
  env?: Record<string, string | undefined>;
  /** The built simulator's main.js; default: beside the built API. */
  entry?: string;
  /** Each line the simulator prints; default: kept for error messages only. */
  onLine?: (line: string, stream: 'stdout' | 'stderr') => void;
  startTimeoutMs?: number;
}

export interface LocalGatewayOptions {
  /** The API's port, where the simulator posts its webhooks. */
  apiPort: number;
  databaseUrl: string;
  /** The API's webhook secret: the simulator signs with it. */
  webhookSecret: string;
}

function portIsFree(host: string, port: number): Promise<boolean> {
  return new Promise((done) => {
    const server = createServer();
    server.once('error', () => done(false));
    server.listen(port, host, () => server.close(() => done(true)));
  });
}

function anyFreePort(host: string): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer();
    server.once('error', fail);
    server.listen(0, host, () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? done(address.port) : fail(new Error('no port')),
      );
    });
  });
}

class PortInUseError extends Error {}

/**
 * The gateway simulator as a real child process: started, awaited until GET /health answers 200,
 * stopped with SIGTERM. `npm start` runs one this way when GATEWAY_URL is unset; tests reuse it.
 */
export class PaymentGatewayProcess {
  private readonly lines: string[] = [];
  private spawnError?: Error;
  private readonly exited: Promise<void>;
  /** After the exit, once its output is drained too. */
  private readonly closed: Promise<void>;

  private constructor(
    private readonly child: ChildProcess,
    readonly url: string,
    onLine: GatewayProcessOptions['onLine'],
  ) {
    // A process that could not be spawned at all emits 'error' and never 'exit'.
    child.once('error', (error) => {
      this.spawnError = error;
      this.lines.push(`spawn failed: ${error.message}`);
    });
    this.exited = new Promise((done) => {
      child.once('exit', () => done());
      child.once('error', () => done());
    });
    this.closed = new Promise((done) => {
      child.once('close', () => done());
      child.once('error', () => done());
    });
    for (const [stream, name] of [
      [child.stdout, 'stdout'],
      [child.stderr, 'stderr'],
    ] as const) {
      if (!stream) continue;
      createInterface({ input: stream }).on('line', (line) => {
        this.lines.push(line);
        if (this.lines.length > KEPT_LINES) this.lines.shift();
        onLine?.(line, name);
      });
    }
  }

  static async start(options: GatewayProcessOptions): Promise<PaymentGatewayProcess> {
    const entry = options.entry ?? BUILT_SIMULATOR;
    const host = options.host ?? '127.0.0.1';
    if (!existsSync(entry)) {
      throw new Error(
        `The gateway simulator is not built (${entry} is missing): run npm run build`,
      );
    }
    // Checked first: /health answered by whoever holds the port would otherwise pass for ours.
    if (!(await portIsFree(host, options.port))) {
      throw new PortInUseError(`port ${options.port} on ${host} is already in use`);
    }
    const child = spawn(process.execPath, ['-e', ORPHAN_GUARD, entry], {
      env: {
        ...process.env,
        ...options.env,
        GATEWAY_PORT: String(options.port),
        GATEWAY_HOST: host,
      },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const urlHost = host.includes(':') ? `[${host}]` : host;
    const gateway = new PaymentGatewayProcess(
      child,
      `http://${urlHost}:${options.port}`,
      options.onLine,
    );
    await gateway.waitUntilHealthy(options.startTimeoutMs ?? 30_000);
    return gateway;
  }

  /**
   * The simulator `npm start` runs beside the API: loopback only, the API's database (its own
   * schema), webhooks to the API, the API's webhook secret. GATEWAY_PORT (default 4010; 0 = any free
   * port) and the other GATEWAY_* settings of this process's environment apply.
   */
  static async startForApi(options: LocalGatewayOptions): Promise<PaymentGatewayProcess> {
    const raw = process.env.GATEWAY_PORT || '4010';
    const port = Number(raw);
    if (!/^\d+$/.test(raw) || port > 65535) {
      throw new Error(`GATEWAY_PORT=${JSON.stringify(raw)}: must be a port number (0 = any free)`);
    }
    const host = '127.0.0.1';
    try {
      return await PaymentGatewayProcess.start({
        port: port || (await anyFreePort(host)),
        host,
        env: {
          GATEWAY_DATABASE_URL: process.env.GATEWAY_DATABASE_URL || options.databaseUrl,
          // With PORT=0 the API's port is not known yet: no webhooks rather than wrong ones.
          GATEWAY_WEBHOOK_URL: options.apiPort
            ? `http://127.0.0.1:${options.apiPort}/payments/webhook`
            : undefined,
          GATEWAY_WEBHOOK_SECRET: options.webhookSecret,
          GATEWAY_LOG_LEVEL: process.env.GATEWAY_LOG_LEVEL || 'warn',
        },
        onLine: (line, stream) => {
          if (stream === 'stderr') console.error(`[gateway] ${line}`);
          else console.log(`[gateway] ${line}`);
        },
      });
    } catch (error) {
      if (!(error instanceof PortInUseError)) throw error;
      throw new Error(
        `Cannot start the local gateway simulator: GATEWAY_PORT ${port} on ${host} is already in use. ` +
          `If a gateway runs there, set GATEWAY_URL=http://${host}:${port} to use it; ` +
          'otherwise set GATEWAY_PORT to a free port (0 = any).',
        { cause: error },
      );
    }
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get running(): boolean {
    return !this.spawnError && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** The last lines it printed. */
  get output(): string {
    return this.lines.join('\n');
  }

  /** Stops it if this process exits while it still runs (process.exit, a failed start). */
  stopOnExit(): this {
    process.once('exit', () => {
      if (this.running) this.child.kill('SIGTERM');
    });
    return this;
  }

  /** Sends `signal`; waits for the exit unless the signal only pauses or resumes it. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (!this.running) return;
    this.child.kill(signal);
    if (signal !== 'SIGSTOP' && signal !== 'SIGCONT') await this.exited;
  }

  /** SIGTERM (graceful), then SIGKILL after `timeoutMs`; resolves once it has exited. */
  async stop(timeoutMs = 5000): Promise<void> {
    if (!this.running) return;
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    this.child.kill('SIGTERM');
    // A stopped (SIGSTOP) process only acts on SIGTERM once resumed.
    this.child.kill('SIGCONT');
    await this.exited;
    clearTimeout(timer);
  }

  private async waitUntilHealthy(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (!this.running) {
        await Promise.race([this.closed, new Promise((r) => setTimeout(r, 1000))]);
        const why = this.spawnError
          ? 'could not be started'
          : `exited (${this.child.signalCode ?? `code ${this.child.exitCode}`})`;
        const Failure = this.output.includes('EADDRINUSE') ? PortInUseError : Error;
        throw new Failure(`The gateway simulator ${why} before it answered:\n${this.output}`);
      }
      try {
        const response = await fetch(`${this.url}/health`, { signal: AbortSignal.timeout(1000) });
        await response.body?.cancel();
        if (response.status === 200) return;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) {
        await this.stop();
        throw new Error(
          `The gateway simulator did not answer ${this.url}/health within ${timeoutMs} ms:\n${this.output}`,
        );
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}
