import { Injectable } from '@nestjs/common';
import { GatewayError } from '../common/gateway.error';
import type { GatewayResponse } from '../common/gateway-response';
import { newId, unixSeconds } from '../common/new-id';
import { IdempotencyService } from '../idempotency/idempotency.service';
import { requestFingerprint } from '../idempotency/request-fingerprint';
import { toPaymentIntent } from '../payment-intents/payment-intent';
import { lockIntent } from '../payment-intents/payment-intents.service';
import { WebhookOutbox } from '../webhooks/webhook-outbox';
import type { CreateRefundDto } from './dto/create-refund.dto';

/** Refunds of captured intents, never more than was received and not yet refunded. */
@Injectable()
export class RefundsService {
  constructor(
    private readonly idempotency: IdempotencyService,
    private readonly outbox: WebhookOutbox,
  ) {}

  create(dto: CreateRefundDto, key: string | undefined): Promise<GatewayResponse> {
    return this.idempotency.run(
      key,
      requestFingerprint('POST /v1/refunds', dto),
      async (client) => {
        // The row lock serializes concurrent refunds of one intent, so they cannot overdraw it.
        const intent = await lockIntent(client, dto.payment_intent, 'payment_intent');
        if (intent.status !== 'succeeded') {
          throw GatewayError.unexpectedState('refund', toPaymentIntent(intent));
        }
        const remaining = intent.amount_received - intent.amount_refunded;
        if (remaining === 0) {
          throw GatewayError.invalidRequest(
            `PaymentIntent ${intent.id} has already been refunded in full.`,
            'payment_intent',
            'charge_already_refunded',
          );
        }
        const amount = dto.amount ?? remaining;
        if (amount > remaining) {
          throw GatewayError.invalidRequest(
            `Refund amount (${amount}) is greater than the unrefunded amount (${remaining}).`,
            'amount',
            'amount_too_large',
          );
        }
        const id = newId('re');
        const { rows } = await client.query<{ created_at: Date }>(
          `INSERT INTO gateway_sim.refunds (id, payment_intent, amount, currency, status)
         VALUES ($1, $2, $3, $4, 'succeeded') RETURNING created_at`,
          [id, intent.id, amount, intent.currency],
        );
        await client.query(
          `UPDATE gateway_sim.payment_intents SET amount_refunded = amount_refunded + $2 WHERE id = $1`,
          [intent.id, amount],
        );
        const refund = {
          id,
          object: 'refund',
          amount,
          currency: intent.currency,
          payment_intent: intent.id,
          status: 'succeeded',
          created: unixSeconds(rows[0].created_at),
        };
        await this.outbox.enqueue(client, 'charge.refunded', refund);
        return { status: 200, body: refund };
      },
    );
  }
}
