import { IsInt, IsOptional, IsString, Max, MaxLength, Min } from 'class-validator';

/** `POST /v1/refunds`: the whole remaining amount when `amount` is omitted. */
export class CreateRefundDto {
  @IsString()
  @MaxLength(255)
  payment_intent: string;

  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(99_999_999)
  amount?: number;
}
