export class WebhookAckDto {
  received: boolean;

  /** True when this event id was seen before; nothing was done again. */
  duplicate: boolean;
}
