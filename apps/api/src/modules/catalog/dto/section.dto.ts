import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';

export class SectionDto {
  name: string;
  /** `seated`: rows of numbered seats; `ga`: general admission, sold by quantity. */
  @ApiProperty({ enum: ['seated', 'ga'] })
  kind: 'seated' | 'ga';
  /** Seats (rows × seatsPerRow) or GA units. */
  capacity: number;
  /** Free now (a lapsed hold counts as free). */
  available: number;
  priceCents: number;
  /** Seated sections only. */
  @ApiPropertyOptional()
  rows?: number;
  /** Seated sections only. */
  @ApiPropertyOptional()
  seatsPerRow?: number;
}
