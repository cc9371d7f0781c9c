import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';

/** What claiming a key found: this request runs, or the answer it gets instead. */
export type IdempotencyClaim =
  | { kind: 'claimed' }
  | { kind: 'completed'; status: number; body: unknown }
  | { kind: 'in_flight' }
  | { kind: 'mismatch' };

/**
 * The idempotency_keys table. A key is claimed by the handler's own first statement (with
 * `seatlock_idempotency_claim`, database/functions/), so claiming costs no round trip of its
 * own; this repository stores the outcomes the handler did not store itself, and purges.
 */
@Injectable()
export class IdempotencyRepository {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  /** Stores a claimed request's answer, as text: a replay must be the same bytes. */
  async complete(customerId: string, key: string, status: number, body: unknown): Promise<void> {
    await this.dataSource.query(`SELECT seatlock_idempotency_complete($1, $2, $3, $4)`, [
      customerId,
      key,
      status,
      JSON.stringify(body ?? null),
    ]);
  }

  /** The request did not complete (5xx, a transient refusal): a retry with this key runs again. */
  async abandon(customerId: string, key: string): Promise<void> {
    await this.dataSource.query(
      `DELETE FROM idempotency_keys WHERE customer_id = $1 AND key = $2 AND state = 'in_flight'`,
      [customerId, key],
    );
  }

  /**
   * Drops every answer past its retention, `batch` rows a statement so no statement holds its locks
   * (or a connection) for long whatever the backlog; answers how many. Stops early when `signal`
   * aborts (the job lease was lost: another instance carries on).
   */
  async purgeExpired(batch = 1000, signal?: AbortSignal): Promise<number> {
    let purged = 0;
    for (;;) {
      const [, count] = await this.dataSource.query<[unknown, number]>(
        `DELETE FROM idempotency_keys WHERE ctid IN (
           SELECT ctid FROM idempotency_keys WHERE expires_at <= now() LIMIT $1)`,
        [batch],
      );
      purged += count;
      if (count < batch || signal?.aborted) return purged;
    }
  }
}
