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

  it('requires DATABASE_URL', () => {
    expect(() => validateEnvironment({})).toThrow(/DATABASE_URL/);
  });
});
