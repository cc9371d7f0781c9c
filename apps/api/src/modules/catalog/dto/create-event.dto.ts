import { Type } from 'class-transformer';
import {
  ArrayMaxSize,
  ArrayMinSize,
  IsArray,
  IsISO4217CurrencyCode,
  IsISO8601,
  IsNotEmpty,
  IsString,
  MaxLength,
  ValidateNested,
} from 'class-validator';
import { CreateSectionDto } from './create-section.dto';

export class CreateEventDto {
  /** Event name. */
  @IsString()
  @IsNotEmpty()
  @MaxLength(200)
  name: string;

  /** ISO 8601 date-time with offset, e.g. `2027-03-01T19:30:00Z`. */
  @IsISO8601({ strict: true, strictSeparator: true })
  startsAt: string;

  /** Where it takes place. */
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

  /** ISO 4217 currency code of every price, e.g. `EUR`. */
  @IsISO4217CurrencyCode()
  currency: string;
}
