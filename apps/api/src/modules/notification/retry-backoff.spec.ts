import { MAX_RETRY_DELAY_MS, retryDelayMs } from './retry-backoff';

describe('retryDelayMs', () => {
  it('doubles per failed attempt, between half and all of the exponential step', () => {
    expect(retryDelayMs(1, 1000, 0)).toBe(500);
    expect(retryDelayMs(1, 1000, 1)).toBe(1000);
    expect(retryDelayMs(2, 1000, 0)).toBe(1000);
    expect(retryDelayMs(3, 1000, 1)).toBe(4000);
    expect(retryDelayMs(4, 1000, 0.5)).toBe(6000);
  });

  it('is capped, even after many attempts', () => {
    expect(retryDelayMs(60, 1000, 1)).toBe(MAX_RETRY_DELAY_MS);
  });

  it('spreads messages that failed together', () => {
    const delays = new Set(Array.from({ length: 50 }, () => retryDelayMs(3, 1000)));
    expect(delays.size).toBeGreaterThan(10);
    for (const delay of delays) {
      expect(delay).toBeGreaterThanOrEqual(2000);
      expect(delay).toBeLessThanOrEqual(4000);
    }
  });
});
