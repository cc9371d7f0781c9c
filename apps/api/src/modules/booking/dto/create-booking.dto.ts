import { ApiPropertyOptional } from '@nestjs/swagger';
import {
  ArrayMaxSize,
  ArrayMinSize,
  IsArray,
  IsBoolean,
  IsDefined,
  IsInt,
  IsNotEmpty,
  IsOptional,
  IsString,
  IsUUID,
  Max,
  MaxLength,
  Min,
  ValidateIf,
} from 'class-validator';
import { Excludes } from '../../../common/validation/excludes.decorator';

const ONE_OR_THE_OTHER = 'name the seats, or ask for a quantity of the best available';

/**
 * A hold: either exactly these seats (`seatIds`), or the best `quantity` free seats the server
 * chooses (optionally within one `section`, adjacent unless `together` is false).
 */
export class CreateBookingDto {
  /** The event (UUID). */
  @IsUUID('all')
  eventId: string;

  /** Seat labels as shown in the seat map, e.g. `["A1", "A2"]`; exact and case-sensitive. */
  @ApiPropertyOptional({ example: ['A1', 'A2'] })
  @ValidateIf((body: CreateBookingDto) => body.seatIds !== undefined || body.quantity === undefined)
  @IsDefined({ message: 'seatIds or quantity is required' })
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(1000)
  @IsString({ each: true })
  @IsNotEmpty({ each: true })
  @MaxLength(16, { each: true })
  seatIds?: string[];

  /** Best available: how many seats (1 to MAX_SEATS_PER_BOOKING); instead of `seatIds`. */
  @ApiPropertyOptional({ type: 'integer', example: 2, minimum: 1 })
  @ValidateIf((body: CreateBookingDto) => body.quantity !== undefined)
  @Excludes('seatIds', ONE_OR_THE_OTHER)
  @IsInt()
  @Min(1)
  @Max(1000)
  quantity?: number;

  /** Best available: only in this section (its name, as in the event's `sections`). */
  @ApiPropertyOptional({ example: 'Stalls' })
  @ValidateIf((body: CreateBookingDto) => body.section !== undefined)
  @Excludes('seatIds', 'a section applies to best available (quantity)')
  @IsString()
  @IsNotEmpty()
  @MaxLength(100)
  section?: string;

  /** Best available: adjacent seats in one row (default), or the best seats wherever they are. */
  @ApiPropertyOptional({ default: true, example: true })
  @IsOptional()
  @Excludes('seatIds', 'together applies to best available (quantity)')
  @IsBoolean()
  together?: boolean;
}
