import { Injectable } from '@nestjs/common';
import { AppConfigService } from '../../config/app-config.service';
import { webhookSignatureProblem } from '../../common/http/webhook-signature';
import type { WebhookAckDto } from './dto/webhook-ack.dto';
import { PaymentError } from './payment.errors';
import { PaymentService } from './payment.service';

/** Checks a gateway webhook (signature over the raw body, then shape) and hands it on. */
@Injectable()
export class GatewayWebhookService {
  constructor(
    private readonly payments: PaymentService,
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
    const applied = await this.payments.applyGatewayEvent({
      id: event.id,
      type: event.type,
      object: object as { id?: unknown; status?: unknown; metadata?: unknown },
    });
    return { received: true, duplicate: !applied };
  }
}
