import { validateEnvironment } from './validate-environment';

const DATABASE_URL = 'postgres://postgres:postgres@127.0.0.1:5432/seatlock';

describe('validateEnvironment', () => {
  it('applies defaults', () => {
    expect(validateEnvironment({ DATABASE_URL })).toMatchObject({
      PORT: 3000,
      REDIS_URL: 'redis://127.0.0.1:6379',
      HOLD_TTL_SECONDS: 300,
      MAX_SEATS_PER_BOOKING: 10,
      LOCK_MODE: 'redis',
      MIGRATIONS_RUN: true,
    });
  });

  it('reads integers strictly and booleans as words', () => {
    const config = validateEnvironment({
      DATABASE_URL,
      HOLD_TTL_SECONDS: '2',
      MIGRATIONS_RUN: 'false',
    });
    expect(config.HOLD_TTL_SECONDS).toBe(2);
    expect(config.MIGRATIONS_RUN).toBe(false);
    expect(() => validateEnvironment({ DATABASE_URL, HOLD_TTL_SECONDS: '1.5' })).toThrow(
      /HOLD_TTL_SECONDS="1.5"/,
    );
    expect(() => validateEnvironment({ DATABASE_URL, PORT: '30x' })).toThrow(/PORT="30x"/);
  });

  it('names every bad variable in one message', () => {
    let message = '';
    try {
      validateEnvironment({ DATABASE_URL: 'mysql://x', LOCK_MODE: 'maybe', ADMIN_TOKEN: 'short' });
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toContain('Invalid configuration');
    for (const name of ['DATABASE_URL', 'LOCK_MODE', 'ADMIN_TOKEN'])
      expect(message).toContain(name);
  });

  it('accepts single-node, sentinel and cluster Redis URLs, and names a wrong one', () => {
    for (const REDIS_URL of [
      'redis://127.0.0.1:6379/2',
      'rediss://cache.example:6380',
      'redis-sentinel://10.0.0.1:26379,10.0.0.2:26379/seats',
      'redis-cluster://10.0.0.1:7000,10.0.0.2:7001',
    ]) {
      expect(validateEnvironment({ DATABASE_URL, REDIS_URL }).REDIS_URL).toBe(REDIS_URL);
    }
    expect(() => validateEnvironment({ DATABASE_URL, REDIS_URL: 'http://x' })).toThrow(
      /REDIS_URL="http:\/\/x"/,
    );
    expect(() => validateEnvironment({ DATABASE_URL, LOCK_MODE: 'redlock' })).toThrow(/REDIS_URLS/);
  });

  it('requires DATABASE_URL', () => {
    expect(() => validateEnvironment({})).toThrow(/DATABASE_URL/);
  });
});
