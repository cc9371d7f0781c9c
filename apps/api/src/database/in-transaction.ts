import type { DataSource, EntityManager } from 'typeorm';
import { isPgRetryable } from './pg-error';

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
      if (attempt >= attempts || !isPgRetryable(error)) throw error;
    }
  }
}
