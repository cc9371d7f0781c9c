import { Injectable, type OnModuleDestroy } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import { Agent, request } from 'undici';
import { Batcher } from '../../../common/batching/batcher';
import { signWebhook } from '../../../common/http/webhook-signature';
import { AppConfigService } from '../../../config/app-config.service';
import { DeliveryRepository } from '../delivery.repository';
import type {
  ClaimedMessage,
  DeliveryOutcome,
  DueDelivery,
  OutboxChannel,
} from '../outbox-channel';
import { isPrivateHost, publicOnlyLookup } from './private-address';
import {
  type WebhookEndpointRecord,
  WebhookEndpointRepository,
} from './webhook-endpoint.repository';
import { WEBHOOK_EVENT_TYPES } from './webhook-events';

const EVENT_TYPES: readonly string[] = WEBHOOK_EVENT_TYPES;
/** Receivers answer with a status; their body is read (to free the connection) up to this much. */
const MAX_RESPONSE_BYTES = 64 * 1024;

/**
 * Outbound webhooks. Fan-out writes one delivery per active endpoint of the message's customer
 * subscribed to its topic; the delivery worker then calls `send`, which POSTs the event signed with
 * the endpoint's secret at send time (so a retry an hour later carries a fresh timestamp that
 * passes the receiver's replay window) and the message id as Idempotency-Key (the same on every
 * attempt and every instance, so receivers can drop the duplicates at-least-once implies).
 */
@Injectable()
export class WebhookChannel implements OutboxChannel, OnModuleDestroy {
  readonly name = 'webhook';
  private readonly allowPrivate: boolean;
  /**
   * Its own connection pool: redirects are never followed (undici's request does not), and unless
   * private networks are allowed every connect checks the address it resolved (publicOnlyLookup).
   */
  private readonly agent: Agent;
  /** Read at send time (a disabled endpoint gets nothing), the sends of a moment in one query. */
  private readonly endpointsForSend: Batcher<string, WebhookEndpointRecord | null>;

  constructor(
    private readonly endpoints: WebhookEndpointRepository,
    private readonly deliveries: DeliveryRepository,
    config: AppConfigService,
  ) {
    this.allowPrivate = config.get('WEBHOOK_ALLOW_PRIVATE_NETWORKS');
    this.endpointsForSend = new Batcher((ids) => this.endpoints.findForSend(ids));
    this.agent = new Agent({
      connections: 64,
      ...(this.allowPrivate ? {} : { connect: { lookup: publicOnlyLookup } }),
    });
  }

  async onModuleDestroy(): Promise<void> {
    await this.agent.close();
  }

  async fanOut(manager: EntityManager, message: ClaimedMessage): Promise<void> {
    // Other topics are internal (e.g. one module asking another to act), not customer events.
    if (!message.customerId || !EVENT_TYPES.includes(message.topic)) return;
    await this.deliveries.insertForEndpoints(manager, this.name, message);
  }

  fanOutStatement(
    messages: readonly ClaimedMessage[],
    param: (value: unknown) => string,
  ): string | null {
    if (!messages.some((m) => m.customerId && EVENT_TYPES.includes(m.topic))) return null;
    return this.deliveries.endpointsStatement(this.name, EVENT_TYPES, param);
  }

  async send(
    delivery: DueDelivery,
    message: ClaimedMessage,
    signal: AbortSignal,
  ): Promise<DeliveryOutcome> {
    const started = performance.now();
    const latencyMs = (): number => Math.round(performance.now() - started);
    const endpoint = delivery.endpointId
      ? await this.endpointsForSend.submit(delivery.endpointId)
      : null;
    if (!endpoint || endpoint.status !== 'active') {
      // Deleting or disabling cancels pending deliveries; this one was claimed just before.
      return {
        delivered: false,
        error: 'the endpoint is no longer active',
        latencyMs: latencyMs(),
      };
    }
    const url = new URL(endpoint.url);
    if (!this.allowPrivate && isPrivateHost(url.hostname)) {
      return {
        delivered: false,
        error: `refused: ${url.hostname} is a private address (WEBHOOK_ALLOW_PRIVATE_NETWORKS is off)`,
        latencyMs: latencyMs(),
      };
    }
    const body = JSON.stringify({
      id: message.id,
      type: message.topic,
      createdAt: message.createdAt.toISOString(),
      data: message.payload,
    });
    try {
      const response = await request(url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': 'Seatlock-Webhooks/1.0',
          'seatlock-signature': signWebhook(endpoint.secret, body),
          'idempotency-key': message.id,
        },
        body,
        signal,
        dispatcher: this.agent,
      });
      await response.body.dump({ limit: MAX_RESPONSE_BYTES }).catch(() => undefined);
      const statusCode = response.statusCode;
      if (statusCode >= 200 && statusCode < 300) {
        return { delivered: true, statusCode, latencyMs: latencyMs() };
      }
      if (statusCode === 410) {
        return {
          delivered: false,
          gone: true,
          statusCode,
          error: 'the endpoint answered 410 Gone: disabled',
          latencyMs: latencyMs(),
        };
      }
      return {
        delivered: false,
        statusCode,
        error: `the endpoint answered ${statusCode}`,
        latencyMs: latencyMs(),
      };
    } catch (error) {
      return { delivered: false, error: describeFailure(error, signal), latencyMs: latencyMs() };
    }
  }
}

function describeFailure(error: unknown, signal: AbortSignal): string {
  if (signal.aborted) {
    const reason: unknown = signal.reason;
    return reason instanceof Error && reason.name === 'TimeoutError'
      ? 'no answer before the send timeout (NOTIFY_SEND_TIMEOUT_MS)'
      : 'aborted';
  }
  if (error instanceof Error) {
    const code = (error as { code?: string }).code;
    const cause = error.cause instanceof Error ? `: ${error.cause.message}` : '';
    return `${code ? `${code} ` : ''}${error.message}${cause}`;
  }
  return String(error);
}
