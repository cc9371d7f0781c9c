import { Injectable, Logger } from '@nestjs/common';
import { parseJsonBody } from '../../common/http/json-body.parser';
import { webhookSignatureProblem } from '../../common/http/webhook-signature';
import { AppConfigService } from '../../config/app-config.service';
import type { GatewayIntent } from './gateway/payment-gateway';
import { PaymentGateway } from './gateway/payment-gateway';
import { GatewayRejectedError } from './gateway/payment-gateway.errors';
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
  object: { id?: unknown; metadata?: unknown };
}

/**
 * Gateway webhooks: the signature over the raw body, the shape, then the effect — taken from the
 * intent as the gateway answers for it, not from the event's word. An event's id is
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
    private readonly gateway: PaymentGateway,
  ) {}

  async receive(rawBody: string, signature: string | undefined): Promise<WebhookAckDto> {
    // The raw bytes are checked before anything parses them: a forgery costs one HMAC.
    const problem = webhookSignatureProblem(
      this.config.secret('GATEWAY_WEBHOOK_SECRET'),
      rawBody,
      signature,
    );
    if (problem) throw PaymentError.invalidSignature(problem);
    const applied = await this.apply(this.parse(rawBody));
    return { received: true, duplicate: !applied };
  }

  private parse(rawBody: string): GatewayEvent {
    // The body parser lets an empty or blank body through (as no body), signed like any other.
    if (rawBody.trim() === '') throw PaymentError.malformedEvent('the event body is empty');
    let event: { id?: unknown; type?: unknown; data?: { object?: unknown } } | null;
    try {
      event = parseJsonBody(rawBody) as typeof event;
    } catch {
      throw PaymentError.malformedEvent('the event body is not valid JSON');
    }
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
    return { id: event.id, type: event.type, object: object as GatewayEvent['object'] };
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
      if (!mayLearn(payment)) return this.payments.recordEvent(event);
      // The event says what happened; the gateway, asked now, is what we act on. A signed event
      // is not enough to book: a leaked secret must not confirm a booking nobody paid for.
      const intent = await this.readBack(payment, intentId, event);
      if (!intent) return true;
      const effect = this.effectOf(payment, intent);
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

  /**
   * The payment's intent as the gateway has it now; null (the event is acknowledged, not recorded,
   * so a genuine delivery of the same id still counts) when it is not this payment's or has not
   * been decided yet.
   */
  private async readBack(
    payment: PaymentRow,
    eventIntentId: string | null,
    event: GatewayEvent,
  ): Promise<GatewayIntent | null> {
    const intentId = payment.gateway_intent_id ?? eventIntentId;
    let intent: GatewayIntent | null = null;
    if (intentId) {
      try {
        intent = await this.gateway.retrieve(intentId);
      } catch (error) {
        // Unreachable gateway: thrown, answered 5xx, and the gateway delivers the event again.
        if (!(error instanceof GatewayRejectedError)) throw error;
      }
    }
    const ours =
      intent !== null &&
      intent.metadata?.paymentId === payment.id &&
      intent.amountCents === Number(payment.amount_cents);
    const decided = intent !== null && ['authorized', 'captured', 'failed'].includes(intent.status);
    if (ours && decided) return intent;
    this.logger.warn(
      {
        eventId: event.id,
        type: event.type,
        paymentId: payment.id,
        intentId,
        gatewayStatus: intent?.status ?? null,
      },
      ours
        ? 'Gateway event ahead of the gateway itself (not decided there yet); acknowledged, nothing changed'
        : "Gateway event names an intent that is not this payment's; acknowledged, nothing changed",
    );
    return null;
  }

  /** What the gateway's intent changes of a payment; null when nothing. */
  private effectOf(
    payment: PaymentRow,
    intent: GatewayIntent,
  ): { changes: PaymentChanges; fact?: BookingFact; outcome?: string } | null {
    const gateway_intent_id = intent.id;
    const paid = intent.status === 'authorized' || intent.status === 'captured';
    // An authorization for a payment already over (failed, voided) is not wanted: give it back.
    if (paid && payment.status !== 'pending') {
      this.logger.warn(
        { paymentId: payment.id, status: payment.status },
        'Late authorization for a payment that is over; voiding it',
      );
      return {
        changes: {
          status: 'authorized',
          next_action: intent.status === 'captured' ? 'refund' : 'void',
          gateway_intent_id,
        },
      };
    }
    if (payment.status !== 'pending') return null;
    if (paid) {
      return {
        changes: {
          status: intent.status === 'captured' ? 'captured' : 'authorized',
          next_action: 'confirm',
          gateway_intent_id,
        },
      };
    }
    const code = intent.declineCode ?? 'declined';
    const reason = intent.message ?? 'The card was declined.';
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

/**
 * Only a payment still waiting for the gateway's decision (or a request still authorizing, or one
 * that crashed doing so) learns from these events, and one already over learns of a late
 * authorization it must give back.
 */
function mayLearn(payment: PaymentRow): boolean {
  if (['failed', 'voided'].includes(payment.status)) return payment.next_action === null;
  return (
    payment.status === 'pending' &&
    (payment.next_action === null || payment.next_action === 'authorize')
  );
}
