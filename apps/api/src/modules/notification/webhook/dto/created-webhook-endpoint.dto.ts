import { WebhookEndpointDto } from './webhook-endpoint.dto';

/** The answer to `POST /webhook-endpoints`: the only time the signing secret is shown. */
export class CreatedWebhookEndpointDto extends WebhookEndpointDto {
  /**
   * Signs every delivery: `Seatlock-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "t.body">`. Shown
   * once; store it now.
   */
  secret: string;
}
