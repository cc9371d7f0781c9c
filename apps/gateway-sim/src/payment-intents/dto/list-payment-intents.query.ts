import { Type } from 'class-transformer';
import { IsInt, IsOptional, IsString, Max, Min } from 'class-validator';

/** `GET /v1/payment_intents?limit=&starting_after=`: oldest first. */
export class ListPaymentIntentsQuery {
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(100)
  limit = 10;

  /** The id of the last intent of the previous page. */
  @IsOptional()
  @IsString()
  starting_after?: string;
}
