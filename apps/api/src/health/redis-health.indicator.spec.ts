import { Logger } from '@nestjs/common';
import { HealthIndicatorService } from '@nestjs/terminus';
import type { LockProvider } from '@app/lock';
import { RedisHealthIndicator } from './redis-health.indicator';

describe('RedisHealthIndicator', () => {
  const ping = jest.fn<Promise<void>, []>();
  const indicator = new RedisHealthIndicator(
    { mode: 'redis', ping } as unknown as LockProvider,
    new HealthIndicatorService(),
  );
  let log: jest.SpyInstance;

  beforeEach(() => {
    log = jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
  });

  afterEach(() => jest.restoreAllMocks());

  it("answers degraded without Redis's error text, and logs the text once per change", async () => {
    ping.mockRejectedValue(new Error('redis 10.0.0.7:6379 is not connected (connecting)'));
    for (let i = 0; i < 3; i += 1) {
      expect(await indicator.check('redis')).toEqual({
        redis: {
          status: 'degraded',
          mode: 'redis',
          message: 'unreachable; PostgreSQL decides holds alone',
        },
      });
    }
    expect(log).toHaveBeenCalledTimes(1);
    expect(JSON.stringify(log.mock.calls[0])).toContain('10.0.0.7:6379 is not connected');

    // Another reason is a change: logged once more.
    ping.mockRejectedValue(new Error('redis 10.0.0.7:6379: circuit open after repeated failures'));
    await indicator.check('redis');
    await indicator.check('redis');
    expect(log).toHaveBeenCalledTimes(2);
    expect(JSON.stringify(log.mock.calls[1])).toContain('circuit open');

    // Back: said once, then quiet.
    ping.mockResolvedValue(undefined);
    expect(await indicator.check('redis')).toEqual({ redis: { status: 'up', mode: 'redis' } });
    await indicator.check('redis');
    expect(log).toHaveBeenCalledTimes(3);
    expect(log.mock.calls[2]).toEqual(['Readiness: Redis up again']);
  });
});
