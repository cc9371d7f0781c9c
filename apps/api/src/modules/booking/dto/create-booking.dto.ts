import {
  ArrayMaxSize,
  ArrayMinSize,
  IsArray,
  IsNotEmpty,
  IsString,
  IsUUID,
  MaxLength,
} from 'class-validator';

export class CreateBookingDto {
  /** The event (UUID). */
  @IsUUID('all')
  eventId: string;

  /** Seat labels as shown in the seat map, e.g. `["A1", "A2"]`; exact and case-sensitive. */
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(1000)
  @IsString({ each: true })
  @IsNotEmpty({ each: true })
  @MaxLength(16, { each: true })
  seatIds: string[];
}
