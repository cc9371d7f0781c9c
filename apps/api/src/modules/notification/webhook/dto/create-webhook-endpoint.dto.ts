import { ApiPropertyOptional } from '@nestjs/swagger';
import {
  ArrayMaxSize,
  ArrayMinSize,
  IsArray,
  IsOptional,
  IsString,
  MaxLength,
  MinLength,
} from 'class-validator';

/** `POST /webhook-endpoints`: where to send which events. */
export class CreateWebhookEndpointDto {
  /**
   * An http(s) URL (at most 2048 characters) that receives a signed POST per event. Private and
   * loopback addresses are refused unless the service allows them.
   * @example https://example.com/hooks/seatlock
   */
  @IsString()
  @MinLength(1)
  @MaxLength(2048)
  url: string;

  /**
   * Event types to receive (booking.held, booking.extended, booking.confirmed, booking.released, booking.expired,
   * booking.cancelled, payment.declined, payment.voided, payment.refunded), or `["*"]` for all.
   * Missing: all.
   * @example ["booking.confirmed", "payment.refunded"]
   */
  @ApiPropertyOptional({ type: [String] })
  @IsOptional()
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(20)
  @IsString({ each: true })
  @MaxLength(64, { each: true })
  events?: string[];
}
