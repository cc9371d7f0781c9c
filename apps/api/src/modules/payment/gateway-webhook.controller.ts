import { Controller, Headers, HttpCode, Post, Req } from '@nestjs/common';
import { ApiBody, ApiHeader, ApiTags } from '@nestjs/swagger';
import { SkipRateLimit } from '../../common/rate-limit/skip-rate-limit.decorator';
import type { FastifyRequest } from 'fastify';
import { ApiProblems } from '../../common/http/api-problems.decorator';
import { WebhookAckDto } from './dto/webhook-ack.dto';
import { GatewayWebhookService } from './gateway-webhook.service';

@ApiTags('payments')
@Controller('payments')
export class GatewayWebhookController {
  constructor(private readonly webhooks: GatewayWebhookService) {}

  /**
   * Events from the payment gateway, signed `Gateway-Signature: t=<unix>,v1=<HMAC-SHA256 of
   * "t.body">` with GATEWAY_WEBHOOK_SECRET; 400 when the signature is missing, wrong or older than 5
   * minutes. A repeated event id is acknowledged (`duplicate: true`) and changes nothing.
   */
  @Post('webhook')
  @HttpCode(200)
  // The gateway is not a customer; its signature, checked first, is what admits it.
  @SkipRateLimit()
  @ApiHeader({ name: 'Gateway-Signature', required: true })
  @ApiBody({
    schema: { type: 'object', description: 'A gateway event {id, type, data: {object}}' },
  })
  @ApiProblems(400)
  receive(
    @Req() request: FastifyRequest & { rawBody?: string },
    @Headers('gateway-signature') signature: string | undefined,
  ): Promise<WebhookAckDto> {
    return this.webhooks.receive(request.rawBody ?? '', signature);
  }
}
