import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { PaymentGatewayProcess } from '../../apps/api/src/payment-gateway-process';
import { freePort } from './redis-server';
import { testDatabaseUrl } from './test-env';

export const BUILT_GATEWAY = resolve(
  __dirname,
  '../../dist/apps/gateway-sim/apps/gateway-sim/src/main.js',
);

/** Where the global teardown finds the global setup's simulator (both run in Jest's main process). */
export const GLOBAL_GATEWAY = Symbol.for('seatlock.e2e.gateway');

/**
 * The database of the global setup's simulator: the test database's name + `_gateway`, apart from
 * the simulators that tests start on the test database itself.
 */
export function globalGatewayDatabaseUrl(): string {
  const url = new URL(testDatabaseUrl());
  url.pathname = `${url.pathname}_gateway`;
  return url.toString();
}

export interface GatewayProcessOptions {
  /** Over the test defaults (test database, short delays, warn logs, no webhooks). */
  env?: Record<string, string>;
  /** Default: a free port. */
  port?: number;
}

/**
 * The built gateway simulator (`npm run build` output) as its own process on a loopback port, on
 * the test database (schema gateway_sim); to stop, kill and restart like a real remote gateway.
 */
export class GatewayProcess {
  private constructor(
    private current: PaymentGatewayProcess,
    private readonly port: number,
    private readonly env: Record<string, string>,
  ) {}

  static async start(options: GatewayProcessOptions = {}): Promise<GatewayProcess> {
    if (!existsSync(BUILT_GATEWAY)) {
      throw new Error(`${BUILT_GATEWAY} is missing: run npm run build (npm test builds first)`);
    }
    const env = {
      GATEWAY_DATABASE_URL: testDatabaseUrl(),
      GATEWAY_LOG_LEVEL: 'warn',
      GATEWAY_SLOW_MS: '300',
      GATEWAY_ASYNC_DELAY_MS: '300',
      GATEWAY_WEBHOOK_RETRY_BASE_MS: '50',
      // Not inherited from whoever runs the tests: a caller who wants webhooks says where.
      GATEWAY_WEBHOOK_URL: '',
      ...options.env,
    };
    const port = options.port ?? (await freePort());
    return new GatewayProcess(await GatewayProcess.spawn(port, env), port, env);
  }

  private static spawn(port: number, env: Record<string, string>): Promise<PaymentGatewayProcess> {
    return PaymentGatewayProcess.start({ port, env, entry: BUILT_GATEWAY, startTimeoutMs: 30_000 });
  }

  get url(): string {
    return this.current.url;
  }

  get pid(): number {
    return this.current.pid;
  }

  get running(): boolean {
    return this.current.running;
  }

  /** What it printed last (stdout and stderr). */
  get output(): string {
    return this.current.output;
  }

  /** SIGTERM, and waits for the exit (SIGKILL after 5 s). */
  stop(): Promise<void> {
    return this.current.stop();
  }

  /** Sends `signal` (default SIGKILL) and waits for the exit, except for SIGSTOP and SIGCONT. */
  kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    return this.current.kill(signal);
  }

  /** Stops it if it still runs, then starts a new process on the same port with the same env. */
  async restart(): Promise<void> {
    await this.current.stop();
    this.current = await GatewayProcess.spawn(this.port, this.env);
  }
}
