import { QueryFailedError } from 'typeorm';
import {
  isPgRetryable,
  isPgUnavailableCode,
  PG_DEADLOCK_DETECTED,
  PG_SERIALIZATION_FAILURE,
  PG_UNIQUE_VIOLATION,
  pgErrorCode,
} from './pg-error';

function driverError(code: string): Error {
  return Object.assign(new Error('failed'), { code });
}

describe('pgErrorCode', () => {
  it('reads the SQLSTATE through TypeORM and from pg directly', () => {
    const wrapped = new QueryFailedError('INSERT', [], driverError(PG_UNIQUE_VIOLATION));
    expect(pgErrorCode(wrapped)).toBe('23505');
    expect(pgErrorCode(driverError('3D000'))).toBe('3D000');
    expect(pgErrorCode(driverError('ECONNREFUSED'))).toBe('ECONNREFUSED');
  });

  it('answers undefined for what carries no code', () => {
    expect(pgErrorCode(new Error('plain'))).toBeUndefined();
    expect(pgErrorCode(undefined)).toBeUndefined();
    expect(pgErrorCode('23505')).toBeUndefined();
    expect(pgErrorCode({ code: 23505 })).toBeUndefined();
  });
});

describe('isPgRetryable', () => {
  it('retries deadlocks and serialization failures only', () => {
    for (const code of [PG_DEADLOCK_DETECTED, PG_SERIALIZATION_FAILURE]) {
      expect(isPgRetryable(new QueryFailedError('UPDATE', [], driverError(code)))).toBe(true);
    }
    expect(isPgRetryable(new QueryFailedError('UPDATE', [], driverError('23505')))).toBe(false);
    expect(isPgRetryable(new Error('no code'))).toBe(false);
  });
});

describe('isPgUnavailableCode', () => {
  it.each(['08006', '08001', '57P01', '57P03', '53300'])('%s: the server is away', (code) => {
    expect(isPgUnavailableCode(code)).toBe(true);
  });

  it.each(['23505', '40001', '53200', '57014', undefined])('%s: a statement failed', (code) => {
    expect(isPgUnavailableCode(code)).toBe(false);
  });
});
