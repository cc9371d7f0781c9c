import { Body, Controller, Get, HttpCode, Post } from '@nestjs/common';
import { ApiTags } from '@nestjs/swagger';
import {
  type AuthenticatedCustomer,
  CurrentCustomer,
  CustomerAuth,
} from '../../common/auth/auth.decorators';
import { ApiProblems } from '../../common/http/api-problems.decorator';
import { UuidParam } from '../../common/http/uuid-param.decorator';
import { Idempotent } from '../../common/idempotency/idempotent.decorator';
import {
  CurrentIdempotentRequest,
  type IdempotentRequest,
} from '../../common/idempotency/idempotent-request';
import { CreatePaymentDto } from './dto/create-payment.dto';
import { PaymentResultDto } from './dto/payment-result.dto';
import { PaymentDto } from './dto/payment.dto';
import { PaymentService } from './payment.service';

@ApiTags('payments')
@CustomerAuth()
@Controller('bookings')
export class PaymentController {
  constructor(private readonly payments: PaymentService) {}

  /**
   * Pays a held booking: authorizes the card, confirms the seats with the hold's fencing token, then
   * captures. 402 when the card is declined (the hold stays; try another card); 409
   * `PAYMENT.SEAT_LOST` when the hold was lost meanwhile (the money is voided or refunded); 409
   * `BOOKING.NOT_PAYABLE` when the booking is not held; 502/503 when the gateway fails (retry with
   * the same Idempotency-Key). An asynchronous card answers 201 with the payment `pending`.
   */
  @Post(':id/payments')
  @HttpCode(201)
  @Idempotent()
  @ApiProblems(400, 402, 404, 409, 422, 502, 503)
  pay(
    @CurrentCustomer() customer: AuthenticatedCustomer,
    @UuidParam('id') id: string,
    @Body() body: CreatePaymentDto,
    @CurrentIdempotentRequest() request: IdempotentRequest,
  ): Promise<PaymentResultDto> {
    return this.payments.pay(customer, id, body, request);
  }

  /** The booking's payments, oldest first. */
  @Get(':id/payments')
  @ApiProblems(400, 404)
  list(
    @CurrentCustomer() customer: AuthenticatedCustomer,
    @UuidParam('id') id: string,
  ): Promise<PaymentDto[]> {
    return this.payments.list(customer, id);
  }
}
