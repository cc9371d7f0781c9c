import { Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import { DeliveryRepository } from '../delivery.repository';
import { NotificationMetrics } from '../notification.metrics';
import type {
  ClaimedMessage,
  DeliveryOutcome,
  DueDelivery,
  OutboxChannel,
} from '../outbox-channel';
import { EmailTemplates, type RenderedEmail } from './email-templates';
import { EmailTransport } from './email-transport.service';

/** What nodemailer attaches to the errors it hands back. */
interface SmtpError extends Error {
  code?: string;
  command?: string;
  response?: string;
  responseCode?: number;
}

/**
 * The email channel: one notification_deliveries row per message (to the customer's address),
 * written in the dispatcher's transaction; the delivery worker then calls `send`, which hands the
 * email to the SMTP server of SMTP_URL.
 *
 * A 5xx rejection is answered as an ordinary failure, never as `gone`: the worker retries it with
 * backoff and dead-letters it after NOTIFY_MAX_ATTEMPTS, where an operator can see it and retry it.
 * `gone` stops for good, and a 5xx is too often not the address's fault to earn that (a relay
 * refusing a misconfigured SMTP_URL, a spam-policy block, a server that answers 5xx for what is
 * transient); the cost of being wrong the other way is a handful of refused attempts.
 */
@Injectable()
export class EmailChannel implements OutboxChannel {
  readonly name = 'email';

  constructor(
    private readonly transport: EmailTransport,
    private readonly deliveries: DeliveryRepository,
    private readonly metrics: NotificationMetrics,
  ) {}

  async fanOut(manager: EntityManager, message: ClaimedMessage): Promise<void> {
    if (!this.transport.enabled || !message.customerId) return;
    // Rendered here only to check the payload: one that cannot make an email fails the dispatch
    // (retried, then dead-lettered for an operator) instead of writing a delivery that can only fail.
    if (!EmailTemplates.render(message.topic, message.payload)) return;
    // The address as it is now; a customer (or an address) that does not exist gets no email.
    const row = await this.deliveries.insertForCustomerEmail(manager, this.name, message);
    if (row.inserted === 0 && row.targets > 0) this.metrics.duplicates.inc({ channel: this.name });
  }

  fanOutStatement(
    messages: readonly ClaimedMessage[],
    param: (value: unknown) => string,
  ): string | null {
    if (!this.transport.enabled) return null;
    const ids = messages
      .filter((m) => m.customerId && EmailTemplates.render(m.topic, m.payload))
      .map((m) => m.id);
    if (ids.length === 0) return null;
    return this.deliveries.customerEmailStatement(this.name, ids, param);
  }

  async send(
    delivery: DueDelivery,
    message: ClaimedMessage,
    signal: AbortSignal,
  ): Promise<DeliveryOutcome> {
    const started = performance.now();
    const latencyMs = (): number => Math.round(performance.now() - started);
    let email: RenderedEmail | null;
    try {
      email = EmailTemplates.render(message.topic, message.payload);
    } catch (error) {
      return { delivered: false, error: (error as Error).message, latencyMs: latencyMs() };
    }
    if (!email) {
      return {
        delivered: false,
        error: `no email template for ${message.topic}`,
        latencyMs: latencyMs(),
      };
    }
    try {
      const accepted = await this.transport.send({
        to: delivery.target,
        subject: email.subject,
        text: email.text,
        // Derived from the outbox message, so every attempt of a message carries the same id and a
        // receiver can drop the copy a retry sends after a lost acknowledgement.
        messageId: `<${message.id}@${this.transport.domain}>`,
        // When it happened, not when this attempt ran.
        date: message.createdAt,
        headers: {
          'X-Seatlock-Message-Id': message.id,
          'X-Seatlock-Topic': message.topic,
          // RFC 3834: an automatic message, so vacation responders stay quiet.
          'Auto-Submitted': 'auto-generated',
        },
        signal,
      });
      return {
        delivered: true,
        statusCode: replyCode(accepted.response),
        latencyMs: latencyMs(),
      };
    } catch (error) {
      return { delivered: false, ...describeFailure(error as SmtpError), latencyMs: latencyMs() };
    }
  }
}

/** "250 2.0.0 OK" → 250. */
function replyCode(response: string): number | undefined {
  const code = /^\d{3}/.exec(response)?.[0];
  return code ? Number(code) : undefined;
}

/** The server's reply code and words when it answered; else what failed (connection, timeout). */
function describeFailure(error: SmtpError): { statusCode?: number; error: string } {
  if (error.responseCode) {
    const command = error.command ? `${error.command}: ` : '';
    return {
      statusCode: error.responseCode,
      error: `SMTP ${command}${error.response ?? error.message}`,
    };
  }
  return { error: error.code ? `${error.code}: ${error.message}` : error.message };
}
