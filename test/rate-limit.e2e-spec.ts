import { registerCustomer } from './support/fixtures';
import { TestApp } from './support/test-app';

describe('rate limits (RATE_LIMIT_PER_MINUTE=5)', () => {
  let api: TestApp;

  beforeAll(async () => {
    api = await TestApp.start({ RATE_LIMIT_PER_MINUTE: '5' });
  });

  afterAll(async () => {
    await api.close();
  });

  it('answers 429 problem+json with Retry-After past the limit, per token', async () => {
    const alice = await registerCustomer(api);
    const bob = await registerCustomer(api);
    const statuses: number[] = [];
    let limited;
    for (let i = 0; i < 6; i += 1) {
      const response = await api.get('/bookings', { token: alice.token });
      statuses.push(response.status);
      limited = response;
    }
    expect(statuses).toEqual([200, 200, 200, 200, 200, 429]);
    expect(limited!.headers['content-type']).toContain('application/problem+json');
    expect(limited!.body).toMatchObject({ status: 429, code: 'REQUEST.RATE_LIMITED' });
    expect(Number(limited!.headers['retry-after'])).toBeGreaterThan(0);

    // Another token has its own budget; health and metrics are never limited.
    expect((await api.get('/bookings', { token: bob.token })).status).toBe(200);
    for (let i = 0; i < 10; i += 1) expect((await api.get('/health/live')).status).toBe(200);
  });
});
