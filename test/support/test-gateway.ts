import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { Agent, request } from 'undici';
import { createGatewayApp } from '../../apps/gateway-sim/src/gateway.factory';
import type { ApiResponse } from './test-app';
import { testDatabaseUrl } from './test-env';

/**
 * The gateway simulator in-process on a loopback port, on the test database (schema gateway_sim),
 * with short delays; and a small HTTP client for it.
 */
export class TestGateway {
  private constructor(
    readonly app: NestFastifyApplication,
    readonly url: string,
    private readonly agent: Agent,
  ) {}

  static async start(env: Record<string, string> = {}): Promise<TestGateway> {
    const app = await createGatewayApp({
      GATEWAY_DATABASE_URL: testDatabaseUrl(),
      GATEWAY_PORT: '0',
      GATEWAY_LOG_LEVEL: 'silent',
      GATEWAY_SLOW_MS: '300',
      GATEWAY_ASYNC_DELAY_MS: '300',
      GATEWAY_WEBHOOK_RETRY_BASE_MS: '50',
      ...env,
    });
    await app.listen({ port: 0, host: '127.0.0.1' });
    const address = app.getHttpServer().address();
    const port = typeof address === 'object' && address ? address.port : 0;
    return new TestGateway(app, `http://127.0.0.1:${port}`, new Agent({ connections: 64 }));
  }

  async request<T = any>(
    method: 'GET' | 'POST',
    path: string,
    body?: unknown,
    idempotencyKey?: string,
  ): Promise<ApiResponse<T>> {
    const headers: Record<string, string> = {};
    if (idempotencyKey !== undefined) headers['idempotency-key'] = idempotencyKey;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const response = await request(`${this.url}${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      dispatcher: this.agent,
    });
    const text = await response.body.text();
    return {
      status: response.statusCode,
      headers: Object.fromEntries(Object.entries(response.headers).map(([k, v]) => [k, String(v)])),
      body: (text ? JSON.parse(text) : undefined) as T,
    };
  }

  get<T = any>(path: string): Promise<ApiResponse<T>> {
    return this.request<T>('GET', path);
  }

  post<T = any>(path: string, body?: unknown, idempotencyKey?: string): Promise<ApiResponse<T>> {
    return this.request<T>('POST', path, body, idempotencyKey);
  }

  async close(): Promise<void> {
    await this.agent.close();
    await this.app.close();
  }
}
