import type { ArgumentsHost } from '@nestjs/common';
import { QueryFailedError } from 'typeorm';
import { DomainError } from '../errors/domain.error';
import { ProblemDetailsFilter } from './problem-details.filter';

function run(exception: unknown) {
  const reply = {
    statusCode: 0,
    headers: {} as Record<string, string>,
    body: undefined as unknown,
    status(code: number) {
      this.statusCode = code;
      return this;
    },
    header(name: string, value: string) {
      this.headers[name] = value;
      return this;
    },
    send(body: unknown) {
      this.body = body;
      return this;
    },
  };
  const host = {
    switchToHttp: () => ({
      getRequest: () => ({ method: 'POST', url: '/bookings' }),
      getResponse: () => reply,
    }),
  } as unknown as ArgumentsHost;
  const filter = new ProblemDetailsFilter();
  // Keep the expected error logs out of the test output.
  (filter as unknown as { logger: { error: () => void } }).logger = { error: () => undefined };
  filter.catch(exception, host);
  return reply;
}

function pgError(code: string, message = 'failed'): QueryFailedError {
  return new QueryFailedError('SELECT 1', [], Object.assign(new Error(message), { code }));
}

describe('ProblemDetailsFilter', () => {
  it('renders a domain error with its code, status, extensions and headers', () => {
    const reply = run(
      new DomainError('X.Y', 409, 'Title', 'Detail', { extra: [1] }, { 'Retry-After': '1' }),
    );
    expect(reply.statusCode).toBe(409);
    expect(reply.headers['content-type']).toBe('application/problem+json');
    expect(reply.headers['Retry-After']).toBe('1');
    expect(reply.body).toEqual({
      type: 'https://seatlock.dev/problems/x.y',
      title: 'Title',
      status: 409,
      detail: 'Detail',
      code: 'X.Y',
      instance: '/bookings',
      extra: [1],
    });
  });

  it('maps a unique violation to 409', () => {
    expect(run(pgError('23505')).statusCode).toBe(409);
  });

  it.each([
    [
      'a refused connection',
      Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }),
    ],
    ['an admin shutdown', pgError('57P01', 'terminating connection due to administrator command')],
    ['a terminated connection', new Error('Connection terminated unexpectedly')],
  ])('answers 503 with Retry-After for %s', (_label, error) => {
    const reply = run(error);
    expect(reply.statusCode).toBe(503);
    expect(reply.headers['Retry-After']).toBe('2');
    expect(reply.body).toMatchObject({ code: 'SERVICE.DATABASE_UNAVAILABLE' });
  });

  it('answers anything else 500 without internals', () => {
    const reply = run(new TypeError('secret stack detail'));
    expect(reply.statusCode).toBe(500);
    expect(JSON.stringify(reply.body)).not.toContain('secret');
  });
});
