import { DomainError } from '../../../common/errors/domain.error';

/** Coded failures of the webhook endpoints API. */
export class WebhookEndpointError extends DomainError {
  static notFound(id: string): WebhookEndpointError {
    return new WebhookEndpointError(
      'WEBHOOK_ENDPOINT.NOT_FOUND',
      404,
      'Webhook endpoint not found',
      `No webhook endpoint ${id}`,
    );
  }

  static invalidUrl(reason: string): WebhookEndpointError {
    return new WebhookEndpointError(
      'WEBHOOK_ENDPOINT.INVALID_URL',
      422,
      'Invalid webhook URL',
      reason,
      {
        errors: [{ field: 'url', messages: [reason] }],
      },
    );
  }

  static privateAddress(host: string): WebhookEndpointError {
    const reason = `url: ${host} is a private, loopback or link-local address; webhooks are only sent to public addresses`;
    return new WebhookEndpointError(
      'WEBHOOK_ENDPOINT.PRIVATE_ADDRESS',
      422,
      'Webhook URL points into a private network',
      reason,
      { errors: [{ field: 'url', messages: [reason] }] },
    );
  }

  static unknownEvents(unknownEvents: string[]): WebhookEndpointError {
    return new WebhookEndpointError(
      'WEBHOOK_ENDPOINT.UNKNOWN_EVENTS',
      422,
      'Unknown webhook events',
      `Unknown event types: ${unknownEvents.join(', ')}`,
      {
        unknownEvents,
        errors: [{ field: 'events', messages: [`unknown: ${unknownEvents.join(', ')}`] }],
      },
    );
  }

  static invalidEvents(reason: string): WebhookEndpointError {
    return new WebhookEndpointError(
      'WEBHOOK_ENDPOINT.INVALID_EVENTS',
      422,
      'Invalid webhook events',
      reason,
      {
        errors: [{ field: 'events', messages: [reason] }],
      },
    );
  }

  static limitReached(limit: number): WebhookEndpointError {
    return new WebhookEndpointError(
      'WEBHOOK_ENDPOINT.LIMIT_REACHED',
      422,
      'Too many webhook endpoints',
      `A customer can have at most ${limit} webhook endpoints; delete one first`,
      { limit },
    );
  }
}
