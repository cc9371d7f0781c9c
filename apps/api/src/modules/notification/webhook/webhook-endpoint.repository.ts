import { Injectable } from '@nestjs/common';
import { DataSource, type EntityManager } from 'typeorm';
import type { Page } from '../../../common/pagination/page';
import { inTransaction } from '../../../database/in-transaction';
import { ALL_WEBHOOK_EVENTS } from './webhook-events';

export type WebhookEndpointStatus = 'active' | 'disabled' | 'deleted';

export interface WebhookEndpointRecord {
  id: string;
  customerId: string;
  url: string;
  events: string[];
  secret: string;
  status: WebhookEndpointStatus;
  disabledReason: string | null;
  createdAt: Date;
}

interface EndpointRow {
  id: string;
  customer_id: string;
  url: string;
  events: string[];
  secret: string;
  status: WebhookEndpointStatus;
  disabled_reason: string | null;
  created_at: Date;
}

const COLUMNS = 'id, customer_id, url, events, secret, status, disabled_reason, created_at';

function toRecord(row: EndpointRow): WebhookEndpointRecord {
  return {
    id: row.id,
    customerId: row.customer_id,
    url: row.url,
    events: row.events,
    secret: row.secret,
    status: row.status,
    disabledReason: row.disabled_reason,
    createdAt: row.created_at,
  };
}

/** webhook_endpoints. Deleted endpoints stay (their deliveries log refers to them) but are hidden. */
@Injectable()
export class WebhookEndpointRepository {
  constructor(private readonly dataSource: DataSource) {}

  /**
   * Inserts the endpoint unless the customer already has `limit` (deleted ones do not count). The
   * count and the insert are serialized per customer by a transaction-scoped advisory lock, so two
   * concurrent creations cannot both squeeze under the limit. Null when the limit is reached.
   */
  async insertWithinLimit(
    endpoint: Omit<WebhookEndpointRecord, 'status' | 'disabledReason' | 'createdAt'>,
    limit: number,
  ): Promise<WebhookEndpointRecord | null> {
    return inTransaction(this.dataSource, async (manager) => {
      await manager.query(`SELECT pg_advisory_xact_lock(hashtext('webhook_endpoints:' || $1))`, [
        endpoint.customerId,
      ]);
      const [{ count }] = await manager.query<{ count: number }[]>(
        `SELECT count(*)::int AS count FROM webhook_endpoints
         WHERE customer_id = $1 AND status <> 'deleted'`,
        [endpoint.customerId],
      );
      if (count >= limit) return null;
      const rows = await manager.query<EndpointRow[]>(
        `INSERT INTO webhook_endpoints (id, customer_id, url, events, secret)
         VALUES ($1, $2, $3, $4, $5) RETURNING ${COLUMNS}`,
        [endpoint.id, endpoint.customerId, endpoint.url, endpoint.events, endpoint.secret],
      );
      return toRecord(rows[0]);
    });
  }

  async list(
    customerId: string,
    limit: number,
    offset: number,
  ): Promise<Page<WebhookEndpointRecord>> {
    const [rows, [{ total }]] = await Promise.all([
      this.dataSource.query<EndpointRow[]>(
        `SELECT ${COLUMNS} FROM webhook_endpoints
         WHERE customer_id = $1 AND status <> 'deleted'
         ORDER BY created_at DESC, id LIMIT $2 OFFSET $3`,
        [customerId, limit, offset],
      ),
      this.dataSource.query<{ total: number }[]>(
        `SELECT count(*)::int AS total FROM webhook_endpoints
         WHERE customer_id = $1 AND status <> 'deleted'`,
        [customerId],
      ),
    ]);
    return { items: rows.map(toRecord), total };
  }

  /** The customer's endpoint, unless deleted; another customer's is null like a missing one. */
  async findOwned(customerId: string, id: string): Promise<WebhookEndpointRecord | null> {
    const rows = await this.dataSource.query<EndpointRow[]>(
      `SELECT ${COLUMNS} FROM webhook_endpoints
       WHERE id = $1 AND customer_id = $2 AND status <> 'deleted'`,
      [id, customerId],
    );
    return rows.length > 0 ? toRecord(rows[0]) : null;
  }

  /** For the sender: url, secret and whether it may still be sent to. */
  /** The endpoints of deliveries about to be sent, in the order of `ids` (null: gone). */
  async findForSend(ids: readonly string[]): Promise<(WebhookEndpointRecord | null)[]> {
    const rows = await this.dataSource.query<EndpointRow[]>(
      `SELECT ${COLUMNS} FROM webhook_endpoints WHERE id = ANY($1::uuid[])`,
      [ids],
    );
    const byId = new Map(rows.map((row) => [row.id, toRecord(row)]));
    return ids.map((id) => byId.get(id) ?? null);
  }

  /**
   * For the deliveries' statements: the active endpoints (id, url, created_at) of `customer`
   * subscribed to `topic` (or to every event), as a subquery. Both are SQL expressions of the
   * caller's query: a placeholder, or a column of a row it joins this to (LATERAL).
   */
  subscribedSql(customer: string, topic: string, param: (value: unknown) => string): string {
    return `SELECT e.id, e.url, e.created_at FROM webhook_endpoints e
      WHERE e.customer_id = ${customer} AND e.status = 'active'
        AND (${param(ALL_WEBHOOK_EVENTS)} = ANY (e.events) OR ${topic} = ANY (e.events))`;
  }

  /** For the deliveries' statements: whether endpoint `id` (an SQL expression) is active. */
  isActiveSql(id: string): string {
    return `EXISTS (SELECT 1 FROM webhook_endpoints e WHERE e.id = ${id} AND e.status = 'active')`;
  }

  /** In the caller's transaction: the endpoint said it is gone (410); it gets nothing more. */
  async disable(manager: EntityManager, id: string, reason: string): Promise<void> {
    await manager.query(
      `UPDATE webhook_endpoints SET status = 'disabled', disabled_reason = $2, updated_at = now()
       WHERE id = $1 AND status = 'active'`,
      [id, reason],
    );
  }

  /** In the caller's transaction: marks the customer's endpoint deleted; null if not theirs. */
  async markDeleted(
    manager: EntityManager,
    customerId: string,
    id: string,
  ): Promise<WebhookEndpointRecord | null> {
    const [rows] = await manager.query<[EndpointRow[], number]>(
      `UPDATE webhook_endpoints SET status = 'deleted', updated_at = now()
       WHERE id = $1 AND customer_id = $2 AND status <> 'deleted'
       RETURNING ${COLUMNS}`,
      [id, customerId],
    );
    return rows.length > 0 ? toRecord(rows[0]) : null;
  }
}
