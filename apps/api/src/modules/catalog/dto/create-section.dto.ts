import { HasVisibleText } from '../../../common/validation/has-visible-text.decorator';
import { ApiPropertyOptional } from '@nestjs/swagger';
import { IsInt, IsNotEmpty, IsString, Max, MaxLength, Min, ValidateIf } from 'class-validator';
import { Excludes } from '../../../common/validation/excludes.decorator';

const ONE_KIND = 'a section is seated (rows, seatsPerRow) or general admission (capacity)';
const isSeated = (section: CreateSectionDto): boolean =>
  section.capacity === undefined || section.rows !== undefined || section.seatsPerRow !== undefined;

/**
 * Either a block of equally priced rows (its rows lettered after the previous seated section's) or
 * a general-admission area of `capacity` units sold by quantity.
 */
export class CreateSectionDto {
  /** Section name, unique within the event. */
  @HasVisibleText()
  @IsString()
  @IsNotEmpty()
  @MaxLength(100)
  name: string;

  /** Seated: number of rows (1–10000). */
  @ApiPropertyOptional({ example: 3 })
  @ValidateIf(isSeated)
  @IsInt()
  @Min(1)
  @Max(10_000)
  rows?: number;

  /** Seated: seats in each row (1–10000). */
  @ApiPropertyOptional({ example: 10 })
  @ValidateIf(isSeated)
  @IsInt()
  @Min(1)
  @Max(10_000)
  seatsPerRow?: number;

  /** General admission: how many units (1–50000); instead of rows and seatsPerRow. */
  @ApiPropertyOptional({ example: 1000 })
  @ValidateIf((section: CreateSectionDto) => section.capacity !== undefined)
  @Excludes('rows', ONE_KIND)
  @Excludes('seatsPerRow', ONE_KIND)
  @IsInt()
  @Min(1)
  @Max(50_000)
  capacity?: number;

  /** Price of one seat in minor units (cents). */
  @IsInt()
  @Min(0)
  @Max(100_000_000)
  priceCents: number;
}
