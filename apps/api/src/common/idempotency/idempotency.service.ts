import { createHash } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { IDEMPOTENCY_RETENTION_HOURS } from './idempotency-headers';

export type IdempotencyClaim =
  | { kind: 'claimed' }
  | { kind: 'completed'; status: number; body: unknown }
  | { kind: 'in_flight' }
  | { kind: 'mismatch' };

/** Same JSON with keys sorted, so that key order does not make a retry look like another request. */
function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.keys(value)
      .sort()
      .map((key) => [key, canonical((value as Record<string, unknown>)[key])]),
  );
}

/** What makes two requests "the same request" for one key: method, path and body. */
export function requestFingerprint(method: string, url: string, body: unknown): string {
  return createHash('sha256')
    .update(JSON.stringify([method, url, canonical(body ?? null)]))
    .digest('hex');
}

/**
 * Idempotency keys in PostgreSQL, scoped to the customer. Claiming is one INSERT … ON CONFLICT, so
 * of 20 concurrent requests with one key exactly one runs; a claim left by a crashed process can be
 * taken over once its lease (`leaseMs`) has passed.
 */
@Injectable()
export class IdempotencyService {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  async claim(
    customerId: string,
    key: string,
    fingerprint: string,
    leaseMs: number,
  ): Promise<IdempotencyClaim> {
    const claimed = await this.dataSource.query<unknown[]>(
      `INSERT INTO idempotency_keys AS k
         (customer_id, key, fingerprint, state, locked_until, expires_at)
       VALUES ($1, $2, $3, 'in_flight', now() + $4 * interval '1 millisecond',
               now() + $5 * interval '1 hour')
       ON CONFLICT (customer_id, key) DO UPDATE
         SET fingerprint = EXCLUDED.fingerprint, state = 'in_flight', response_status = NULL,
             response_body = NULL, locked_until = EXCLUDED.locked_until,
             expires_at = EXCLUDED.expires_at, created_at = now()
         WHERE k.expires_at <= now()
            OR (k.state = 'in_flight' AND k.locked_until <= now() AND k.fingerprint = EXCLUDED.fingerprint)
       RETURNING 1`,
      [customerId, key, fingerprint, leaseMs, IDEMPOTENCY_RETENTION_HOURS],
    );
    if (claimed.length > 0) return { kind: 'claimed' };
    const [row] = await this.dataSource.query<
      {
        fingerprint: string;
        state: string;
        response_status: number;
        response_body: string | null;
      }[]
    >(
      `SELECT fingerprint, state, response_status, response_body FROM idempotency_keys
       WHERE customer_id = $1 AND key = $2`,
      [customerId, key],
    );
    // Gone between the two statements (purged): treat as in flight, the client retries.
    if (!row) return { kind: 'in_flight' };
    if (row.fingerprint !== fingerprint) return { kind: 'mismatch' };
    if (row.state === 'in_flight') return { kind: 'in_flight' };
    // Stored as text, not jsonb: jsonb reorders keys, and a replay must be the same answer.
    return {
      kind: 'completed',
      status: row.response_status,
      body: row.response_body === null ? null : JSON.parse(row.response_body),
    };
  }

  async complete(customerId: string, key: string, status: number, body: unknown): Promise<void> {
    await this.dataSource.query(
      `UPDATE idempotency_keys SET state = 'completed', response_status = $3, response_body = $4
       WHERE customer_id = $1 AND key = $2`,
      [customerId, key, status, JSON.stringify(body ?? null)],
    );
  }

  /** The request did not complete (5xx, a transient refusal): a retry with this key runs again. */
  async abandon(customerId: string, key: string): Promise<void> {
    await this.dataSource.query(
      `DELETE FROM idempotency_keys WHERE customer_id = $1 AND key = $2 AND state = 'in_flight'`,
      [customerId, key],
    );
  }

  /** Drops answers past their retention; answers how many. */
  async purgeExpired(limit = 1000): Promise<number> {
    const [, count] = await this.dataSource.query<[unknown, number]>(
      `DELETE FROM idempotency_keys WHERE ctid IN (
         SELECT ctid FROM idempotency_keys WHERE expires_at <= now() LIMIT $1)`,
      [limit],
    );
    return count;
  }
}
