/** A webhook endpoint as its owner sees it (never with its secret). */
export class WebhookEndpointDto {
  /** Endpoint id (UUID). */
  id: string;

  url: string;

  /** Subscribed event types, or `["*"]` for all. */
  events: string[];

  /** `active`, or `disabled` once the receiver answered 410 Gone. */
  status: string;

  /** Why it was disabled; null while active. */
  disabledReason: string | null;

  createdAt: string;
}
