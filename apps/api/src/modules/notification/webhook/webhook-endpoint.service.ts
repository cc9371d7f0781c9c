import { randomBytes, randomUUID } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import type { AuthenticatedCustomer } from '../../../common/auth/auth.decorators';
import type { Page } from '../../../common/pagination/page';
import type { PageQueryDto } from '../../../common/pagination/page-query.dto';
import { AppConfigService } from '../../../config/app-config.service';
import { inTransaction } from '../../../database/in-transaction';
import { DeliveryRepository, type DeliveryLogEntry } from '../delivery.repository';
import type { CreateWebhookEndpointDto } from './dto/create-webhook-endpoint.dto';
import { CreatedWebhookEndpointDto } from './dto/created-webhook-endpoint.dto';
import { WebhookDeliveryDto } from './dto/webhook-delivery.dto';
import { WebhookEndpointDto } from './dto/webhook-endpoint.dto';
import { isPrivateHost } from './private-address';
import { WebhookEndpointError } from './webhook-endpoint.errors';
import {
  type WebhookEndpointRecord,
  WebhookEndpointRepository,
} from './webhook-endpoint.repository';
import { ALL_WEBHOOK_EVENTS, WEBHOOK_EVENT_TYPES } from './webhook-events';

/** Endpoints one customer may have: enough for every environment, bounded fan-out per message. */
export const MAX_ENDPOINTS_PER_CUSTOMER = 20;

function toDto(endpoint: WebhookEndpointRecord): WebhookEndpointDto {
  return {
    id: endpoint.id,
    url: endpoint.url,
    events: endpoint.events,
    status: endpoint.status,
    disabledReason: endpoint.disabledReason,
    createdAt: endpoint.createdAt.toISOString(),
  };
}

function toDeliveryDto(entry: DeliveryLogEntry): WebhookDeliveryDto {
  return {
    id: entry.id,
    messageId: entry.messageId,
    eventType: entry.eventType,
    status: entry.status,
    attemptCount: entry.attempts,
    nextAttemptAt: entry.status === 'pending' ? entry.nextAttemptAt.toISOString() : null,
    lastError: entry.lastError,
    deliveredAt: entry.deliveredAt?.toISOString() ?? null,
    createdAt: entry.createdAt.toISOString(),
    attempts: entry.log.map((a) => ({
      attempt: a.attempt,
      statusCode: a.statusCode,
      latencyMs: a.latencyMs,
      error: a.error,
      at: new Date(a.at).toISOString(),
    })),
  };
}

/** A customer's outbound webhook subscriptions and their deliveries log. */
@Injectable()
export class WebhookEndpointService {
  constructor(
    private readonly dataSource: DataSource,
    private readonly endpoints: WebhookEndpointRepository,
    private readonly deliveries: DeliveryRepository,
    private readonly config: AppConfigService,
  ) {}

  /** 422 for a URL that is not http(s), a literal private address, unknown events or too many endpoints. */
  async create(
    customer: AuthenticatedCustomer,
    body: CreateWebhookEndpointDto,
  ): Promise<CreatedWebhookEndpointDto> {
    const url = this.checkUrl(body.url);
    const events = this.checkEvents(body.events);
    // 32 random bytes: unguessable; base64url so it pastes cleanly into any config file.
    const secret = `whsec_${randomBytes(32).toString('base64url')}`;
    const created = await this.endpoints.insertWithinLimit(
      { id: randomUUID(), customerId: customer.id, url, events, secret },
      MAX_ENDPOINTS_PER_CUSTOMER,
    );
    if (!created) throw WebhookEndpointError.limitReached(MAX_ENDPOINTS_PER_CUSTOMER);
    return { ...toDto(created), secret };
  }

  async list(
    customer: AuthenticatedCustomer,
    query: PageQueryDto,
  ): Promise<Page<WebhookEndpointDto>> {
    const page = await this.endpoints.list(customer.id, query.limit, query.offset);
    return { items: page.items.map(toDto), total: page.total };
  }

  async get(customer: AuthenticatedCustomer, id: string): Promise<WebhookEndpointDto> {
    return toDto(await this.owned(customer, id));
  }

  /**
   * Deletes the endpoint and cancels its pending deliveries in one transaction, so nothing is
   * sent to it afterwards (a send already in flight may still land). Its log stays readable only
   * to operators; for the customer it is gone (404 from now on).
   */
  async remove(customer: AuthenticatedCustomer, id: string): Promise<WebhookEndpointDto> {
    const deleted = await inTransaction(this.dataSource, async (manager) => {
      const endpoint = await this.endpoints.markDeleted(manager, customer.id, id);
      if (endpoint) await this.deliveries.cancelForEndpoint(manager, id, 'endpoint deleted');
      return endpoint;
    });
    if (!deleted) throw WebhookEndpointError.notFound(id);
    return toDto(deleted);
  }

  async deliveriesOf(
    customer: AuthenticatedCustomer,
    id: string,
    query: PageQueryDto,
  ): Promise<Page<WebhookDeliveryDto>> {
    await this.owned(customer, id);
    const page = await this.deliveries.listForEndpoint(id, query.limit, query.offset);
    return { items: page.items.map(toDeliveryDto), total: page.total };
  }

  private async owned(customer: AuthenticatedCustomer, id: string): Promise<WebhookEndpointRecord> {
    const endpoint = await this.endpoints.findOwned(customer.id, id);
    if (!endpoint) throw WebhookEndpointError.notFound(id);
    return endpoint;
  }

  private checkUrl(raw: string): string {
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      throw WebhookEndpointError.invalidUrl('url must be an absolute http(s) URL');
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw WebhookEndpointError.invalidUrl(
        `url must use http or https, not ${url.protocol.replace(/:$/, '')}`,
      );
    }
    if (url.username || url.password) {
      throw WebhookEndpointError.invalidUrl(
        'url must not carry credentials; verify the signature instead',
      );
    }
    // Host names are checked again at send time, against what they resolve to then.
    if (!this.config.get('WEBHOOK_ALLOW_PRIVATE_NETWORKS') && isPrivateHost(url.hostname)) {
      throw WebhookEndpointError.privateAddress(url.hostname);
    }
    return raw;
  }

  private checkEvents(events: string[] | undefined): string[] {
    if (!events || events.includes(ALL_WEBHOOK_EVENTS)) {
      const others = (events ?? []).filter((e) => e !== ALL_WEBHOOK_EVENTS);
      if (others.length > 0) {
        throw WebhookEndpointError.invalidEvents(
          '"*" stands for every event; list no others with it',
        );
      }
      return [ALL_WEBHOOK_EVENTS];
    }
    const known: readonly string[] = WEBHOOK_EVENT_TYPES;
    const unknown = [...new Set(events.filter((e) => !known.includes(e)))];
    if (unknown.length > 0) throw WebhookEndpointError.unknownEvents(unknown);
    return [...new Set(events)];
  }
}
