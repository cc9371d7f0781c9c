import { HasVisibleText } from '../../../common/validation/has-visible-text.decorator';
import { IsInt, IsNotEmpty, IsString, Max, MaxLength, Min } from 'class-validator';

/** A block of equally priced rows; its rows are lettered after the previous section's. */
export class CreateSectionDto {
  /** Section name, unique within the event. */
  @HasVisibleText()
  @IsString()
  @IsNotEmpty()
  @MaxLength(100)
  name: string;

  /** Number of rows (1–10000). */
  @IsInt()
  @Min(1)
  @Max(10_000)
  rows: number;

  /** Seats in each row (1–10000). */
  @IsInt()
  @Min(1)
  @Max(10_000)
  seatsPerRow: number;

  /** Price of one seat in minor units (cents). */
  @IsInt()
  @Min(0)
  @Max(100_000_000)
  priceCents: number;
}
