import { ApiProperty } from '@nestjs/swagger';
import type { PaymentStatus } from '../payment.repository';

export class PaymentDto {
  /** Payment id (UUID). */
  id: string;

  bookingId: string;

  /**
   * pending: the gateway has not decided yet (an asynchronous card); authorized: money reserved,
   * not taken; captured: taken; voided: the reservation was released; refunded: given back; failed.
   */
  @ApiProperty({ enum: ['pending', 'authorized', 'captured', 'voided', 'refunded', 'failed'] })
  status: PaymentStatus;

  amountCents: number;

  refundedCents: number;

  currency: string;

  paymentMethod: string;

  /** The gateway's payment intent, once it has one. */
  gatewayIntentId: string | null;

  /** Why the payment failed or was voided (e.g. `insufficient_funds`, `seat_lost`). */
  failureCode: string | null;

  failureMessage: string | null;

  createdAt: string;
}
