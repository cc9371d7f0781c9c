import { IsIn, IsInt, IsOptional, IsString, Matches, Max, MaxLength, Min } from 'class-validator';
import { IsStringMap } from '../../common/is-string-map.decorator';

/** `POST /v1/payment_intents`. */
export class CreatePaymentIntentDto {
  /** In the currency's smallest unit (cents). */
  @IsInt()
  @Min(1)
  @Max(99_999_999)
  amount: number;

  /** ISO 4217, any case; stored lower-case as Stripe does. */
  @Matches(/^[A-Za-z]{3}$/, { message: 'currency must be a three-letter ISO code' })
  currency: string;

  /** One of the test payment methods, e.g. `pm_card_visa`. */
  @IsString()
  @MaxLength(255)
  payment_method: string;

  /** Only manual capture is simulated: authorize now, capture later. */
  @IsOptional()
  @IsIn(['manual'])
  capture_method?: 'manual';

  @IsOptional()
  @IsStringMap()
  metadata?: Record<string, string>;
}
