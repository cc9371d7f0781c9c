import { setTimeout as sleep } from 'node:timers/promises';
import type { Client } from 'pg';

export interface DrainOptions {
  /** Give up after this long. */
  timeoutMs: number;
  pollMs: number;
  /** Give up when the count has not moved for this long (a stalled dispatcher). */
  stallMs?: number;
}

/**
 * Waits until the outbox has no pending message (or gives up); answers how many still are and how
 * many reads it took (each a transaction of the database, for benchmarks that count those).
 */
export async function drainOutbox(
  client: Client,
  { timeoutMs, pollMs, stallMs = Infinity }: DrainOptions,
): Promise<{ pending: number; reads: number }> {
  const deadline = Date.now() + timeoutMs;
  let [last, changedAt] = [-1, Date.now()];
  for (let reads = 1; ; reads += 1) {
    const { rows } = await client.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM outbox_messages WHERE status = 'pending'`,
    );
    const pending = rows[0].n;
    if (pending !== last) [last, changedAt] = [pending, Date.now()];
    const now = Date.now();
    if (pending === 0 || now - changedAt >= stallMs || now > deadline) return { pending, reads };
    await sleep(pollMs);
  }
}
