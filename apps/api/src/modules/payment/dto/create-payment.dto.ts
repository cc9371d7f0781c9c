import { IsString, Matches, MaxLength } from 'class-validator';

export class CreatePaymentDto {
  /**
   * The card to charge, as a gateway payment method id. The simulator's test cards: `pm_card_visa`,
   * `pm_card_declined`, `pm_card_insufficient_funds`, `pm_card_async`, `pm_card_slow`, `pm_card_flaky`.
   */
  @IsString()
  @MaxLength(100)
  @Matches(/^pm_[A-Za-z0-9_]+$/, { message: 'paymentMethod must look like pm_…' })
  paymentMethod: string;
}
