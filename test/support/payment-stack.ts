import { randomUUID } from 'node:crypto';
import { request } from 'undici';
import { checkLedger } from '../../apps/api/src/ledger/ledger-check';
import type { Customer } from './fixtures';
import { GatewayProcess } from './gateway-process';
import { freePort } from './redis-server';
import type { ApiResponse, TestApp } from './test-app';
import { TestApp as App } from './test-app';
import { testDatabaseUrl } from './test-env';

export const WEBHOOK_SECRET = 'whsec_e2e_payments_0123456789';

/**
 * The API and a gateway simulator process wired both ways: the API calls the gateway, the gateway
 * posts signed webhooks to the API. The API's port is chosen first so the gateway knows it.
 */
export class PaymentStack {
  private constructor(
    readonly api: TestApp,
    readonly gateway: GatewayProcess,
  ) {}

  static async start(
    apiEnv: Record<string, string> = {},
    gatewayEnv: Record<string, string> = {},
  ): Promise<PaymentStack> {
    const apiPort = await freePort();
    const gateway = await GatewayProcess.start({
      env: {
        GATEWAY_WEBHOOK_URL: `http://127.0.0.1:${apiPort}/payments/webhook`,
        GATEWAY_WEBHOOK_SECRET: WEBHOOK_SECRET,
        ...gatewayEnv,
      },
    });
    const api = await App.start(
      {
        GATEWAY_URL: gateway.url,
        GATEWAY_WEBHOOK_SECRET: WEBHOOK_SECRET,
        RECONCILE_INTERVAL_MS: '500',
        SWEEP_INTERVAL_MS: '200',
        ...apiEnv,
      },
      apiPort,
    );
    return new PaymentStack(api, gateway);
  }

  pay(
    customer: Customer,
    bookingId: string,
    paymentMethod = 'pm_card_visa',
    key: string = randomUUID(),
  ): Promise<ApiResponse> {
    return this.api.post(
      `/bookings/${bookingId}/payments`,
      { paymentMethod },
      { token: customer.token, headers: { 'idempotency-key': key } },
    );
  }

  async hold(customer: Customer, eventId: string, seatIds: string[]): Promise<string> {
    const response = await this.api.post(
      '/bookings',
      { eventId, seatIds },
      { token: customer.token },
    );
    if (response.status !== 201) {
      throw new Error(`hold: ${response.status} ${JSON.stringify(response.body)}`);
    }
    return response.body.id;
  }

  /** Every intent the gateway holds for this booking (read through its own API, all pages). */
  async intentsFor(bookingId: string): Promise<any[]> {
    const found: any[] = [];
    let after: string | undefined;
    for (;;) {
      const query = `limit=100${after ? `&starting_after=${after}` : ''}`;
      const response = await request(`${this.gateway.url}/v1/payment_intents?${query}`);
      const page = (await response.body.json()) as { data: any[]; has_more: boolean };
      found.push(...page.data.filter((intent) => intent.metadata?.bookingId === bookingId));
      if (!page.has_more || page.data.length === 0) return found;
      after = page.data[page.data.length - 1].id;
    }
  }

  /** check:ledger over these bookings, waiting up to `settleMs` for the reconciler. */
  async ledgerViolations(bookingIds: string[], settleMs = 10_000): Promise<string[]> {
    const report = await checkLedger({
      databaseUrl: testDatabaseUrl(),
      gatewayUrl: this.gateway.url,
      bookingIds,
      settleMs,
    });
    return report.violations;
  }

  async close(): Promise<void> {
    await this.api.close();
    await this.gateway.stop();
  }
}

/** Polls `probe` until it returns a truthy value; fails with `what` after `timeoutMs`. */
export async function eventually<T>(
  what: string,
  probe: () => Promise<T | null | undefined | false>,
  timeoutMs = 15_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
