import { Transform } from 'class-transformer';
import { IsEmail, IsNotEmpty, IsString, MaxLength } from 'class-validator';

export class CreateCustomerDto {
  /** Unique per customer (case-insensitive). */
  @IsString()
  @IsEmail()
  @MaxLength(254)
  @Transform(({ value }: { value: unknown }) => (typeof value === 'string' ? value.trim() : value))
  email: string;

  /** Display name. */
  @IsString()
  @IsNotEmpty()
  @MaxLength(200)
  name: string;
}
