/** Base class so callers can catch every lock failure with one `instanceof`. */
export abstract class LockError extends Error {
  abstract readonly code: string;
}

/** Some key is held by another owner. `busyKeys` lists exactly which. */
export class LockBusyError extends LockError {
  readonly code = 'LOCK.BUSY';
  constructor(readonly busyKeys: string[]) {
    super(`lock busy: ${busyKeys.join(', ')}`);
    this.name = 'LockBusyError';
  }

  /**
   * Busy is an expected answer on the contended path (999 of 1,000 contenders), not a fault: built
   * without capturing a stack trace, which costs more than the rest of the losing path.
   */
  static of(busyKeys: string[]): LockBusyError {
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    try {
      return new LockBusyError(busyKeys);
    } finally {
      Error.stackTraceLimit = limit;
    }
  }
}

export type UnavailableReason = 'unreachable' | 'timeout' | 'off';

/** Redis could not be asked (down, timing out, or the provider is switched off). */
export class LockUnavailableError extends LockError {
  readonly code = 'LOCK.UNAVAILABLE';
  constructor(
    message: string,
    readonly reason: UnavailableReason = 'unreachable',
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'LockUnavailableError';
  }
}

/** The lease is no longer held: it expired or another owner has the key. */
export class LockLostError extends LockError {
  readonly code = 'LOCK.LOST';
  constructor(readonly keys: string[]) {
    super(`lock lost: ${keys.join(', ')}`);
    this.name = 'LockLostError';
  }
}
