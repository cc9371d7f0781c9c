import type { DataSource, EntityManager } from 'typeorm';

/** Deadlock and serialization failures: the transaction did nothing and may simply run again. */
const RETRYABLE = new Set(['40P01', '40001']);

function isRetryable(error: unknown): boolean {
  const code = (error as { driverError?: { code?: string }; code?: string })?.driverError?.code;
  return code !== undefined && RETRYABLE.has(code);
}

/**
 * Runs `work` in one transaction, again (up to `attempts` times) when PostgreSQL aborted it for a
 * deadlock — possible when two multi-seat holds lock overlapping rows in different orders.
 */
export function inTransaction<T>(
  dataSource: DataSource,
  work: (manager: EntityManager) => Promise<T>,
  attempts = 3,
): Promise<T> {
  return retryingAborted(() => dataSource.transaction(work), attempts);
}

/**
 * Runs `work` (one statement, or one transaction) again when PostgreSQL aborted it for a deadlock
 * or a serialization failure: it did nothing, so running it again is safe.
 */
export async function retryingAborted<T>(work: () => Promise<T>, attempts = 3): Promise<T> {
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await work();
    } catch (error) {
      if (attempt >= attempts || !isRetryable(error)) throw error;
    }
  }
}
