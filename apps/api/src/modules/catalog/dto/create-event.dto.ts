import { ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import {
  ArrayMaxSize,
  ArrayMinSize,
  IsArray,
  IsISO4217CurrencyCode,
  IsIn,
  IsISO8601,
  IsNotEmpty,
  IsOptional,
  IsString,
  Matches,
  MaxLength,
  ValidateNested,
} from 'class-validator';
import { HasVisibleText } from '../../../common/validation/has-visible-text.decorator';
import type { OrphanPolicy } from '../seat-map';
import { CreateSectionDto } from './create-section.dto';

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})$/;

export class CreateEventDto {
  /** Event name. */
  @HasVisibleText()
  @IsString()
  @IsNotEmpty()
  @MaxLength(200)
  name: string;

  /** RFC 3339 date-time with an offset, e.g. `2027-03-01T19:30:00Z` or `…+01:00`. */
  @Matches(RFC3339, {
    message: 'startsAt must be an RFC 3339 date-time with offset, e.g. 2027-03-01T19:30:00Z',
  })
  @IsISO8601({ strict: true, strictSeparator: true })
  startsAt: string;

  /** Where it takes place. */
  @HasVisibleText()
  @IsString()
  @IsNotEmpty()
  @MaxLength(200)
  venue: string;

  /** Sections in seat-map order; at most 10,000 seats in all. */
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(100)
  @ValidateNested({ each: true })
  @Type(() => CreateSectionDto)
  sections: CreateSectionDto[];

  /** ISO 4217 currency code of every price, upper case, e.g. `EUR`. */
  @Matches(/^[A-Z]{3}$/, { message: 'currency must be three upper-case letters' })
  @IsISO4217CurrencyCode()
  currency: string;

  /**
   * `strict` refuses holds that would strand a single free seat between unavailable ones (unless
   * unavoidable); `off` (the default) allows them.
   */
  @ApiPropertyOptional({ enum: ['off', 'strict'], default: 'off', example: 'strict' })
  @IsOptional()
  @IsIn(['off', 'strict'], { message: 'orphanPolicy must be "off" or "strict"' })
  orphanPolicy?: OrphanPolicy;
}
