import { Injectable, Logger, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { Pool, type PoolClient, type QueryResultRow } from 'pg';
import { GatewayEnvironment } from '../config/gateway-environment';
import { GATEWAY_SCHEMA_SQL } from './gateway-schema';

/** Deadlock and serialization failures: the transaction did nothing and may simply run again. */
const RETRYABLE = new Set(['40P01', '40001']);

/** The simulator's PostgreSQL pool; creates the `gateway_sim` schema at start. */
@Injectable()
export class GatewayDatabase implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(GatewayDatabase.name);
  private readonly pool: Pool;
  /** What each open transaction (by its client) runs once it has committed. */
  private readonly commitHooks = new Map<PoolClient, Array<() => void>>();

  constructor(config: GatewayEnvironment) {
    this.pool = new Pool({
      connectionString: config.GATEWAY_DATABASE_URL,
      max: 10,
      connectionTimeoutMillis: 5000,
    });
    // An idle client losing its server must not crash the process; the next query reconnects.
    this.pool.on('error', (error) =>
      this.logger.warn(`PostgreSQL client failed: ${error.message}`),
    );
  }

  async onModuleInit(): Promise<void> {
    await this.transaction((client) => client.query(GATEWAY_SCHEMA_SQL));
  }

  async onApplicationShutdown(): Promise<void> {
    await this.pool.end();
  }

  async query<T extends QueryResultRow>(sql: string, params: unknown[] = []): Promise<T[]> {
    return (await this.pool.query<T>(sql, params)).rows;
  }

  /** Runs `work` in one transaction, again (up to 3 times) after a deadlock. */
  async transaction<T>(work: (client: PoolClient) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt += 1) {
      const client = await this.pool.connect();
      const hooks: Array<() => void> = [];
      this.commitHooks.set(client, hooks);
      let broken: Error | undefined;
      let committed: { result: T } | undefined;
      // A checked-out client has no pool listener: without this, its server going away (a
      // PostgreSQL restart) is an unhandled 'error' event that kills the process.
      const onError = (error: Error): void => {
        broken = error;
      };
      client.on('error', onError);
      try {
        await client.query('BEGIN');
        const result = await work(client);
        await client.query('COMMIT');
        committed = { result };
      } catch (error) {
        try {
          await client.query('ROLLBACK');
        } catch (rollbackError) {
          broken = rollbackError as Error;
        }
        const code = (error as { code?: string }).code;
        if (attempt >= 3 || code === undefined || !RETRYABLE.has(code)) throw error;
      } finally {
        // A client whose ROLLBACK failed (or that lost its server) is in an unknown state: the
        // pool drops it.
        this.commitHooks.delete(client);
        client.off('error', onError);
        client.release(broken);
      }
      if (committed) {
        for (const hook of hooks) hook();
        return committed.result;
      }
    }
  }

  /**
   * Runs `hook` once the transaction of `client` has committed (never if it rolls back): a wake
   * for work this transaction wrote, which a worker could not see before.
   */
  afterCommit(client: PoolClient, hook: () => void): void {
    const hooks = this.commitHooks.get(client);
    if (!hooks) throw new Error('afterCommit outside GatewayDatabase.transaction');
    hooks.push(hook);
  }
}
