import { Body, Controller, HttpCode, Post, Res } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { respond } from '../common/gateway-response';
import { IdempotencyKey } from '../idempotency/idempotency-key.decorator';
import { CreateRefundDto } from './dto/create-refund.dto';
import { RefundsService } from './refunds.service';

/** `POST /v1/refunds`, honouring `Idempotency-Key`. */
@Controller('v1/refunds')
export class RefundsController {
  constructor(private readonly refunds: RefundsService) {}

  @Post()
  @HttpCode(200)
  async create(
    @Body() dto: CreateRefundDto,
    @IdempotencyKey() key: string | undefined,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<unknown> {
    return respond(reply, await this.refunds.create(dto, key));
  }
}
