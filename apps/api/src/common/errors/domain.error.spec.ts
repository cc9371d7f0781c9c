import { DomainError } from './domain.error';

describe('DomainError', () => {
  it('captures no stack frames for an expected 4xx answer', () => {
    const error = new DomainError('BOOKING.SEAT_UNAVAILABLE', 409, 'Seats unavailable', 'held');
    expect(error.stack).toBe('DomainError: held');
    expect(error.message).toBe('held');
  });

  it('keeps the stack of a 5xx, which is logged', () => {
    const error = new DomainError('BOOKING.OVERLOADED', 503, 'Overloaded', 'retry');
    expect(error.stack).toMatch(/\n\s+at /);
  });

  it('leaves Error.stackTraceLimit as it found it', () => {
    const before = Error.stackTraceLimit;
    new DomainError('X.Y', 404, 'Not found', 'gone');
    expect(Error.stackTraceLimit).toBe(before);
    expect(new Error('other').stack).toMatch(/\n\s+at /);
  });
});
