import { Transform } from 'class-transformer';
import { HasVisibleText } from '../../../common/validation/has-visible-text.decorator';
import { IsEmail, IsNotEmpty, IsString, MaxLength } from 'class-validator';

export class CreateCustomerDto {
  /** Unique per customer (case-insensitive). */
  @IsString()
  @IsEmail()
  @MaxLength(254)
  @Transform(({ value }: { value: unknown }) => (typeof value === 'string' ? value.trim() : value))
  email: string;

  /** Display name. */
  @HasVisibleText()
  @IsString()
  @IsNotEmpty()
  @MaxLength(200)
  name: string;
}
