import { LOCAL_DATABASE_URL, loadGatewayEnvironment } from './load-gateway-environment';

describe('loadGatewayEnvironment', () => {
  it('applies defaults, with the database taken from DATABASE_URL when set', () => {
    expect(loadGatewayEnvironment({})).toMatchObject({
      GATEWAY_PORT: 4010,
      GATEWAY_DATABASE_URL: LOCAL_DATABASE_URL,
      GATEWAY_WEBHOOK_SECRET: 'whsec_dev_only_change_me',
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
