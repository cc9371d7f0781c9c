import {
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnModuleDestroy,
} from '@nestjs/common';
import type { PoolClient } from 'pg';
import { GatewayError } from '../common/gateway.error';
import type { GatewayResponse } from '../common/gateway-response';
import { type TickOutcome, WorkLoop } from '../common/work-loop';
import { GatewayDatabase } from '../database/gateway-database';

/** Keys are kept this long, as Stripe does; an older key may be reused for anything. */
const KEY_TTL = "interval '24 hours'";
const PURGE_INTERVAL_MS = 60_000;

/**
 * Claims the key, or takes over one that has expired. A concurrent twin blocks on the uncommitted
 * row until the first request commits (then sees its answer) or rolls back (then runs itself): so
 * twenty concurrent requests with one key create one intent.
 */
const CLAIM_SQL = `
INSERT INTO gateway_sim.idempotency_keys (key, request_hash) VALUES ($1, $2)
ON CONFLICT (key) DO UPDATE
  SET request_hash = EXCLUDED.request_hash, status_code = NULL, body = NULL, created_at = now()
  WHERE gateway_sim.idempotency_keys.created_at < now() - ${KEY_TTL}
RETURNING key`;

/**
 * Stripe-style idempotency: a request's answer (any status below 500) is stored in the same
 * transaction as its effects and replayed for the same key and parameters.
 */
@Injectable()
export class IdempotencyService implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly purge = new WorkLoop({
    tick: () => this.purgeExpired(),
    idleMs: PURGE_INTERVAL_MS,
    logger: new Logger(IdempotencyService.name),
  });

  constructor(private readonly db: GatewayDatabase) {}

  onApplicationBootstrap(): void {
    this.purge.start();
  }

  async onModuleDestroy(): Promise<void> {
    await this.purge.stop();
  }

  /**
   * Runs `work` in a transaction under `key` (none: just runs it). A GatewayError below 500 thrown
   * by `work` is undone, stored and answered like any other outcome; anything else rolls back
   * everything, the key included, so a retry runs again.
   */
  run(
    key: string | undefined,
    fingerprint: string,
    work: (client: PoolClient) => Promise<GatewayResponse>,
  ): Promise<GatewayResponse> {
    return this.db.transaction(async (client) => {
      if (key === undefined) return work(client);
      const claimed = await client.query(CLAIM_SQL, [key, fingerprint]);
      if (claimed.rowCount === 0) return this.replay(client, key, fingerprint);
      const response = await this.attempt(client, work);
      await client.query(
        `UPDATE gateway_sim.idempotency_keys SET status_code = $2, body = $3 WHERE key = $1`,
        [key, response.status, JSON.stringify(response.body)],
      );
      return response;
    });
  }

  /**
   * True the first time `key` is seen (and remembers it, outside any transaction, so that the
   * simulated failure itself is not rolled back).
   */
  async firstSighting(key: string): Promise<boolean> {
    const rows = await this.db.query(
      `INSERT INTO gateway_sim.flaky_attempts (key) VALUES ($1) ON CONFLICT DO NOTHING RETURNING key`,
      [key],
    );
    return rows.length === 1;
  }

  private async replay(
    client: PoolClient,
    key: string,
    fingerprint: string,
  ): Promise<GatewayResponse> {
    const { rows } = await client.query<{
      request_hash: string;
      status_code: number;
      body: unknown;
    }>(`SELECT request_hash, status_code, body FROM gateway_sim.idempotency_keys WHERE key = $1`, [
      key,
    ]);
    if (rows[0].request_hash !== fingerprint) {
      throw GatewayError.idempotency(
        `Keys for idempotent requests can only be used with the same parameters they were first ` +
          `used with. Try using a key other than '${key}' if you meant to execute a different request.`,
      );
    }
    return { status: rows[0].status_code, body: rows[0].body, replayed: true };
  }

  private async attempt(
    client: PoolClient,
    work: (client: PoolClient) => Promise<GatewayResponse>,
  ): Promise<GatewayResponse> {
    await client.query('SAVEPOINT idempotent_work');
    try {
      const response = await work(client);
      await client.query('RELEASE SAVEPOINT idempotent_work');
      return response;
    } catch (error) {
      if (!(error instanceof GatewayError) || error.status >= 500) throw error;
      await client.query('ROLLBACK TO SAVEPOINT idempotent_work');
      return error.toResponse();
    }
  }

  /** Expiry needs no promptness: once a minute, nothing to wake it sooner. */
  private async purgeExpired(): Promise<TickOutcome> {
    await this.db.query(
      `DELETE FROM gateway_sim.idempotency_keys WHERE created_at < now() - ${KEY_TTL}`,
    );
    await this.db.query(
      `DELETE FROM gateway_sim.flaky_attempts WHERE created_at < now() - ${KEY_TTL}`,
    );
    return { handled: 0, nextDueAt: null };
  }
}
