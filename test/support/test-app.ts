import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { Agent, request } from 'undici';
import { createApp } from '../../apps/api/src/app.factory';
import { TEST_ADMIN_TOKEN, testDatabaseUrl, testRedisUrl } from './test-env';

export interface ApiResponse<T = any> {
  status: number;
  headers: Record<string, string>;
  body: T;
}

export interface RequestOptions {
  token?: string;
  headers?: Record<string, string>;
  /** Sent as is (not JSON-encoded) when a string or Buffer. */
  raw?: string | Buffer;
}

/** A running API on a loopback port, and a small HTTP client that talks to it over real TCP. */
export class TestApp {
  private constructor(
    readonly app: NestFastifyApplication,
    readonly url: string,
    private readonly agent: Agent,
  ) {}

  /**
   * Starts the application exactly as production builds it, with `env` over the test defaults, on
   * `port` (default: any free one; a fixed one lets a gateway be told where to send webhooks first).
   */
  static async start(env: Record<string, string> = {}, port = 0): Promise<TestApp> {
    // @nestjs/config copies the validated settings (these overrides and every default) into
    // process.env, where the next app of this test file, and every process it spawns, would read
    // them as its own: e.g. one app's HOLD_TTL_SECONDS=2 or SMTP_URL leaking into the next. Undo it.
    const before = { ...process.env };
    const app = await createApp({
      DATABASE_URL: testDatabaseUrl(),
      REDIS_URL: testRedisUrl(),
      ADMIN_TOKEN: TEST_ADMIN_TOKEN,
      LOG_LEVEL: 'silent',
      MIGRATIONS_RUN: 'false',
      RATE_LIMIT_PER_MINUTE: '0',
      REGISTRATIONS_PER_IP_PER_HOUR: '0',
      // Every test connects from 127.0.0.1 and some open hundreds of seat streams: the tests of
      // the per-address cap set it.
      STREAM_MAX_PER_IP: '0',
      // The global setup's simulator process, unless the caller names another gateway.
      ...(process.env.GATEWAY_URL ? { GATEWAY_URL: process.env.GATEWAY_URL } : {}),
      ...env,
    }).finally(() => {
      for (const key of Object.keys(process.env)) if (!(key in before)) delete process.env[key];
      Object.assign(process.env, before);
    });
    await app.listen({ port, host: '127.0.0.1' });
    const address = app.getHttpServer().address();
    const bound = typeof address === 'object' && address ? address.port : 0;
    return new TestApp(app, `http://127.0.0.1:${bound}`, new Agent({ connections: 512 }));
  }

  async request<T = any>(
    method: string,
    path: string,
    body?: unknown,
    options: RequestOptions = {},
  ): Promise<ApiResponse<T>> {
    const headers: Record<string, string> = { ...options.headers };
    if (options.token) headers.authorization = `Bearer ${options.token}`;
    let payload: string | Buffer | undefined = options.raw;
    if (payload === undefined && body !== undefined) {
      payload = JSON.stringify(body);
      headers['content-type'] ??= 'application/json';
    }
    const response = await request(`${this.url}${path}`, {
      method: method as 'GET',
      headers,
      body: payload,
      dispatcher: this.agent,
    });
    const text = await response.body.text();
    const contentType = String(response.headers['content-type'] ?? '');
    return {
      status: response.statusCode,
      headers: Object.fromEntries(
        Object.entries(response.headers).map(([k, v]) => [
          k,
          Array.isArray(v) ? v.join(', ') : String(v),
        ]),
      ),
      body: (contentType.includes('json') && text ? JSON.parse(text) : text) as T,
    };
  }

  get<T = any>(path: string, options?: RequestOptions): Promise<ApiResponse<T>> {
    return this.request<T>('GET', path, undefined, options);
  }

  post<T = any>(path: string, body?: unknown, options?: RequestOptions): Promise<ApiResponse<T>> {
    return this.request<T>('POST', path, body, options);
  }

  delete<T = any>(path: string, options?: RequestOptions): Promise<ApiResponse<T>> {
    return this.request<T>('DELETE', path, undefined, options);
  }

  async close(): Promise<void> {
    await this.agent.close();
    await this.app.close();
  }
}
