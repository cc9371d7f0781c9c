import { Body, Controller, Get, HttpCode, Param, Post, Query, Res } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { respond } from '../common/gateway-response';
import { IdempotencyKey } from '../idempotency/idempotency-key.decorator';
import { CreatePaymentIntentDto } from './dto/create-payment-intent.dto';
import { ListPaymentIntentsQuery } from './dto/list-payment-intents.query';
import type { PaymentIntent } from './payment-intent';
import { PaymentIntentsService } from './payment-intents.service';

/** Stripe-like payment intents; every POST honours `Idempotency-Key`. */
@Controller('v1/payment_intents')
export class PaymentIntentsController {
  constructor(private readonly intents: PaymentIntentsService) {}

  @Post()
  @HttpCode(200)
  async create(
    @Body() dto: CreatePaymentIntentDto,
    @IdempotencyKey() key: string | undefined,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<unknown> {
    return respond(reply, await this.intents.create(dto, key));
  }

  @Get()
  list(@Query() query: ListPaymentIntentsQuery): Promise<Record<string, unknown>> {
    return this.intents.list(query);
  }

  @Get(':id')
  get(@Param('id') id: string): Promise<PaymentIntent> {
    return this.intents.get(id);
  }

  @Post(':id/capture')
  @HttpCode(200)
  async capture(
    @Param('id') id: string,
    @IdempotencyKey() key: string | undefined,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<unknown> {
    return respond(reply, await this.intents.capture(id, key));
  }

  @Post(':id/cancel')
  @HttpCode(200)
  async cancel(
    @Param('id') id: string,
    @IdempotencyKey() key: string | undefined,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<unknown> {
    return respond(reply, await this.intents.cancel(id, key));
  }
}
