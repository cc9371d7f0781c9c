import { LOCAL_DATABASE_URL, loadGatewayEnvironment } from './load-gateway-environment';

describe('loadGatewayEnvironment', () => {
  it('applies defaults, with the database taken from DATABASE_URL when set', () => {
    expect(loadGatewayEnvironment({})).toMatchObject({
      GATEWAY_PORT: 4010,
      GATEWAY_DATABASE_URL: LOCAL_DATABASE_URL,
      GATEWAY_WEBHOOK_SECRET: expect.stringMatching(/^whsec_[\w-]{43}$/),
      GATEWAY_SLOW_MS: 5000,
      GATEWAY_ASYNC_DELAY_MS: 2000,
      GATEWAY_WEBHOOK_DUPLICATE_RATE: 0,
      GATEWAY_WEBHOOK_MAX_DELAY_MS: 0,
      GATEWAY_WEBHOOK_MAX_ATTEMPTS: 8,
      GATEWAY_WEBHOOK_RETRY_BASE_MS: 500,
    });
    const url = 'postgres://u@db:5432/other';
    expect(loadGatewayEnvironment({ DATABASE_URL: url }).GATEWAY_DATABASE_URL).toBe(url);
    expect(
      loadGatewayEnvironment({ DATABASE_URL: url, GATEWAY_DATABASE_URL: LOCAL_DATABASE_URL })
        .GATEWAY_DATABASE_URL,
    ).toBe(LOCAL_DATABASE_URL);
  });

  it('makes a secret up when none is set, and refuses a short one in production', () => {
    const first = loadGatewayEnvironment({}).GATEWAY_WEBHOOK_SECRET;
    expect(loadGatewayEnvironment({}).GATEWAY_WEBHOOK_SECRET).not.toBe(first);
    expect(() => loadGatewayEnvironment({ NODE_ENV: 'production' })).toThrow(
      /^NODE_ENV=production needs GATEWAY_WEBHOOK_SECRET/,
    );
    expect(() =>
      loadGatewayEnvironment({ NODE_ENV: 'production', GATEWAY_WEBHOOK_SECRET: 'x'.repeat(20) }),
    ).toThrow(/at least 32/);
    const strong = 'y'.repeat(32);
    expect(
      loadGatewayEnvironment({ NODE_ENV: 'production', GATEWAY_WEBHOOK_SECRET: strong })
        .GATEWAY_WEBHOOK_SECRET,
    ).toBe(strong);
  });

  it('reads numbers strictly and names every bad variable', () => {
    expect(loadGatewayEnvironment({ GATEWAY_WEBHOOK_DUPLICATE_RATE: '0.5' })).toMatchObject({
      GATEWAY_WEBHOOK_DUPLICATE_RATE: 0.5,
    });
    let message = '';
    try {
      loadGatewayEnvironment({
        GATEWAY_PORT: '40x',
        GATEWAY_WEBHOOK_DUPLICATE_RATE: '2',
        GATEWAY_WEBHOOK_URL: 'ftp://x',
      });
    } catch (error) {
      message = (error as Error).message;
    }
    for (const name of ['GATEWAY_PORT', 'GATEWAY_WEBHOOK_DUPLICATE_RATE', 'GATEWAY_WEBHOOK_URL'])
      expect(message).toContain(name);
  });
});
