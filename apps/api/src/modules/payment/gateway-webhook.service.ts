import { Injectable, Logger } from '@nestjs/common';
import { AppConfigService } from '../../config/app-config.service';
import { webhookSignatureProblem } from '../../common/http/webhook-signature';
import type { WebhookAckDto } from './dto/webhook-ack.dto';
import { PaymentError } from './payment.errors';
import { PaymentMetrics } from './payment.metrics';
import {
  type BookingFact,
  type PaymentChanges,
  PaymentRepository,
  type PaymentRow,
} from './payment.repository';
import { declinedFact, PaymentWorkflowService } from './payment-workflow.service';

/** Gateway events that can change a payment; the rest are acknowledged and left alone. */
const EFFECTIVE_EVENTS = new Set(['payment_intent.succeeded', 'payment_intent.payment_failed']);

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A verified gateway event, as far as it matters here. */
interface GatewayEvent {
  id: string;
  type: string;
  object: {
    id?: unknown;
    status?: unknown;
    metadata?: unknown;
    last_payment_error?: Record<string, unknown>;
  };
}

/**
 * Gateway webhooks: the signature over the raw body, the shape, then the effect. An event's id is
 * recorded in the statement of its effect, so a duplicate does nothing and a crash before commit
 * lets the gateway's retry apply it.
 */
@Injectable()
export class GatewayWebhookService {
  private readonly logger = new Logger(GatewayWebhookService.name);

  constructor(
    private readonly payments: PaymentRepository,
    private readonly workflow: PaymentWorkflowService,
    private readonly metrics: PaymentMetrics,
    private readonly config: AppConfigService,
  ) {}

  async receive(rawBody: string, signature: string | undefined): Promise<WebhookAckDto> {
    const problem = webhookSignatureProblem(
      this.config.get('GATEWAY_WEBHOOK_SECRET'),
      rawBody,
      signature,
    );
    if (problem) throw PaymentError.invalidSignature(problem);
    // The body parser lets an empty or blank body through (as no body), signed like any other.
    if (rawBody.trim() === '') throw PaymentError.malformedEvent('the event body is empty');
    const event = JSON.parse(rawBody) as {
      id?: unknown;
      type?: unknown;
      data?: { object?: unknown };
    };
    const object = event?.data?.object;
    if (
      typeof event?.id !== 'string' ||
      event.id.length === 0 ||
      event.id.length > 255 ||
      typeof event.type !== 'string' ||
      typeof object !== 'object' ||
      object === null
    ) {
      throw PaymentError.malformedEvent(
        'an event needs a string id, a string type and data.object',
      );
    }
    const applied = await this.apply({
      id: event.id,
      type: event.type,
      object: object as GatewayEvent['object'],
    });
    return { received: true, duplicate: !applied };
  }

  /** Applies an event; false for a duplicate. */
  private async apply(event: GatewayEvent): Promise<boolean> {
    // Other events (our own captures, voids and refunds echoed back) change nothing here, so they
    // need neither a statement nor de-duplication.
    if (!EFFECTIVE_EVENTS.has(event.type)) return true;
    const intentId = typeof event.object.id === 'string' ? event.object.id : null;
    const metadata = (event.object.metadata ?? {}) as Record<string, unknown>;
    const paymentId =
      typeof metadata.paymentId === 'string' && UUID.test(metadata.paymentId)
        ? metadata.paymentId
        : null;
    for (let attempt = 1; ; attempt += 1) {
      const { payment, seen } = await this.payments.findForEvent(event.id, intentId, paymentId);
      if (seen) return false;
      if (!payment) {
        this.logger.warn(
          { eventId: event.id, type: event.type, intentId },
          'Gateway event for an unknown payment; acknowledged and ignored',
        );
        return this.payments.recordEvent(event);
      }
      const effect = this.effectOf(payment, event, intentId);
      if (!effect) return this.payments.recordEvent(event);
      const done = await this.workflow.tryStep(payment, effect.changes, {
        fact: effect.fact,
        event,
      });
      // Moved on meanwhile (another delivery of this event, a request, the reconciler): look again.
      if (!done && attempt < 5) continue;
      if (!done)
        throw new Error(`payment ${payment.id} kept changing under gateway event ${event.id}`);
      if (effect.outcome) this.metrics.outcomes.inc({ outcome: effect.outcome });
      if (done.next_action) await this.workflow.settleNow(done);
      return true;
    }
  }

  /** What an event changes of a payment; null when nothing. */
  private effectOf(
    payment: PaymentRow,
    event: GatewayEvent,
    intentId: string | null,
  ): { changes: PaymentChanges; fact?: BookingFact; outcome?: string } | null {
    const gateway_intent_id = intentId ?? payment.gateway_intent_id;
    // An authorization for a payment already over (failed, voided) is not wanted: give it back.
    if (
      event.type === 'payment_intent.succeeded' &&
      ['failed', 'voided'].includes(payment.status) &&
      payment.next_action === null
    ) {
      this.logger.warn(
        { paymentId: payment.id, status: payment.status },
        'Late authorization for a payment that is over; voiding it',
      );
      return {
        changes: {
          status: 'authorized',
          next_action: event.object.status === 'succeeded' ? 'refund' : 'void',
          gateway_intent_id,
        },
      };
    }
    // Only a payment still waiting for the gateway's decision learns anything from these events;
    // a request still authorizing (or one that crashed doing so) learns the outcome from it too.
    if (
      payment.status !== 'pending' ||
      !(payment.next_action === null || payment.next_action === 'authorize')
    ) {
      return null;
    }
    if (event.type === 'payment_intent.succeeded') {
      const captured = event.object.status === 'succeeded';
      return {
        changes: {
          status: captured ? 'captured' : 'authorized',
          next_action: 'confirm',
          gateway_intent_id,
        },
      };
    }
    const error = event.object.last_payment_error;
    const code = String(error?.decline_code ?? error?.code ?? 'declined');
    const reason = String(error?.message ?? 'The card was declined.');
    return {
      changes: {
        status: 'failed',
        next_action: null,
        failure_code: code,
        failure_message: reason,
        gateway_intent_id,
      },
      fact: declinedFact(payment, code, reason),
      outcome: 'declined',
    };
  }
}
