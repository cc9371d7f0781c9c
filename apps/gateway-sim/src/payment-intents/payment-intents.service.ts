import { setTimeout as sleep } from 'node:timers/promises';
import { Injectable } from '@nestjs/common';
import type { PoolClient } from 'pg';
import { GatewayEnvironment } from '../config/gateway-environment';
import { GatewayError } from '../common/gateway.error';
import type { GatewayResponse } from '../common/gateway-response';
import { newId } from '../common/new-id';
import { GatewayDatabase } from '../database/gateway-database';
import { IdempotencyService } from '../idempotency/idempotency.service';
import { requestFingerprint } from '../idempotency/request-fingerprint';
import { WebhookOutbox } from '../webhooks/webhook-outbox';
import { AsyncAuthorizationWorker } from './async-authorization.worker';
import type { CreatePaymentIntentDto } from './dto/create-payment-intent.dto';
import type { ListPaymentIntentsQuery } from './dto/list-payment-intents.query';
import {
  INTENT_COLUMNS,
  type PaymentIntent,
  type PaymentIntentRow,
  toPaymentIntent,
} from './payment-intent';
import { TEST_PAYMENT_METHODS, type TestPaymentMethod } from './test-payment-methods';

/** Reads an intent and locks it for the rest of the transaction, so transitions serialize. */
export async function lockIntent(
  client: PoolClient,
  id: string,
  param?: string,
): Promise<PaymentIntentRow> {
  const { rows } = await client.query<PaymentIntentRow>(
    `SELECT ${INTENT_COLUMNS} FROM gateway_sim.payment_intents WHERE id = $1 FOR UPDATE`,
    [id],
  );
  if (rows.length === 0) throw GatewayError.missing('payment_intent', id, param);
  return rows[0];
}

/** Payment intents with manual capture: authorize, capture, cancel (void). */
@Injectable()
export class PaymentIntentsService {
  constructor(
    private readonly db: GatewayDatabase,
    private readonly idempotency: IdempotencyService,
    private readonly outbox: WebhookOutbox,
    private readonly config: GatewayEnvironment,
    private readonly asyncAuthorizations: AsyncAuthorizationWorker,
  ) {}

  async create(dto: CreatePaymentIntentDto, key: string | undefined): Promise<GatewayResponse> {
    const method = Object.hasOwn(TEST_PAYMENT_METHODS, dto.payment_method)
      ? TEST_PAYMENT_METHODS[dto.payment_method]
      : undefined;
    if (!method) {
      throw GatewayError.invalidRequest(
        `No such PaymentMethod: '${dto.payment_method}'; use a test one such as pm_card_visa`,
        'payment_method',
        'resource_missing',
      );
    }
    const fingerprint = requestFingerprint('POST /v1/payment_intents', dto);
    // Without a key the body stands in for it, so a plain retry of a flaky call works too.
    if (method.flaky && (await this.idempotency.firstSighting(key ?? fingerprint))) {
      throw GatewayError.transient();
    }
    if (method.slow) await sleep(this.config.GATEWAY_SLOW_MS);
    return this.idempotency.run(key, fingerprint, (client) => this.insert(client, dto, method));
  }

  capture(id: string, key: string | undefined): Promise<GatewayResponse> {
    return this.idempotency.run(key, requestFingerprint('capture', id), async (client) => {
      const intent = await lockIntent(client, id);
      if (intent.status !== 'requires_capture') {
        throw GatewayError.unexpectedState('capture', toPaymentIntent(intent));
      }
      const captured = await this.update(
        client,
        id,
        `status = 'succeeded', amount_received = amount, amount_capturable = 0`,
      );
      await this.outbox.enqueue(client, 'charge.captured', captured);
      return { status: 200, body: captured };
    });
  }

  /** Void. Cancelling a cancelled intent answers it again; a captured one needs a refund instead. */
  cancel(id: string, key: string | undefined): Promise<GatewayResponse> {
    return this.idempotency.run(key, requestFingerprint('cancel', id), async (client) => {
      const intent = await lockIntent(client, id);
      if (intent.status === 'canceled') return { status: 200, body: toPaymentIntent(intent) };
      if (intent.status === 'succeeded') {
        throw GatewayError.unexpectedState('cancel', toPaymentIntent(intent));
      }
      const canceled = await this.update(
        client,
        id,
        `status = 'canceled', amount_capturable = 0, async_ready_at = NULL, canceled_at = now()`,
      );
      await this.outbox.enqueue(client, 'payment_intent.canceled', canceled);
      return { status: 200, body: canceled };
    });
  }

  async get(id: string): Promise<PaymentIntent> {
    const rows = await this.db.query<PaymentIntentRow>(
      `SELECT ${INTENT_COLUMNS} FROM gateway_sim.payment_intents WHERE id = $1`,
      [id],
    );
    if (rows.length === 0) throw GatewayError.missing('payment_intent', id);
    return toPaymentIntent(rows[0]);
  }

  async list(query: ListPaymentIntentsQuery): Promise<Record<string, unknown>> {
    let after = '0';
    if (query.starting_after !== undefined) {
      const cursor = await this.db.query<{ seq: string }>(
        `SELECT seq FROM gateway_sim.payment_intents WHERE id = $1`,
        [query.starting_after],
      );
      if (cursor.length === 0) {
        throw GatewayError.missing('payment_intent', query.starting_after, 'starting_after');
      }
      after = cursor[0].seq;
    }
    const rows = await this.db.query<PaymentIntentRow>(
      `SELECT ${INTENT_COLUMNS} FROM gateway_sim.payment_intents
        WHERE seq > $1 ORDER BY seq LIMIT $2`,
      [after, query.limit + 1],
    );
    return {
      object: 'list',
      url: '/v1/payment_intents',
      data: rows.slice(0, query.limit).map(toPaymentIntent),
      has_more: rows.length > query.limit,
    };
  }

  private async insert(
    client: PoolClient,
    dto: CreatePaymentIntentDto,
    method: TestPaymentMethod,
  ): Promise<GatewayResponse> {
    const status =
      method.outcome === 'authorize'
        ? 'requires_capture'
        : method.outcome === 'async'
          ? 'processing'
          : 'requires_payment_method';
    const lastError = method.decline
      ? { type: 'card_error', code: 'card_declined', ...method.decline }
      : null;
    const { rows } = await client.query<PaymentIntentRow>(
      `INSERT INTO gateway_sim.payment_intents
         (id, amount, amount_capturable, currency, status, payment_method, capture_method,
          metadata, last_payment_error, async_ready_at)
       VALUES ($1, $2, $3, $4, $5, $6, 'manual', $7, $8,
               CASE WHEN $5 = 'processing' THEN now() + $9 * interval '1 millisecond' END)
       RETURNING ${INTENT_COLUMNS}`,
      [
        newId('pi'),
        dto.amount,
        status === 'requires_capture' ? dto.amount : 0,
        dto.currency.toLowerCase(),
        status,
        dto.payment_method,
        JSON.stringify(dto.metadata ?? {}),
        lastError && JSON.stringify(lastError),
        this.config.GATEWAY_ASYNC_DELAY_MS,
      ],
    );
    const intent = toPaymentIntent(rows[0]);
    if (status === 'processing') {
      const delayMs = this.config.GATEWAY_ASYNC_DELAY_MS;
      this.db.afterCommit(client, () => this.asyncAuthorizations.wakeIn(delayMs));
    }
    if (!method.decline) return { status: 200, body: intent };
    await this.outbox.enqueue(client, 'payment_intent.payment_failed', intent);
    return {
      status: 402,
      body: {
        error: {
          type: 'card_error',
          code: 'card_declined',
          ...method.decline,
          param: 'payment_method',
          payment_intent: intent,
        },
      },
    };
  }

  private async update(
    client: PoolClient,
    id: string,
    assignments: string,
  ): Promise<PaymentIntent> {
    const { rows } = await client.query<PaymentIntentRow>(
      `UPDATE gateway_sim.payment_intents SET ${assignments} WHERE id = $1 RETURNING ${INTENT_COLUMNS}`,
      [id],
    );
    return toPaymentIntent(rows[0]);
  }
}
