import { ApiProperty } from '@nestjs/swagger';
import type { SeatStatus } from '../seat-map';

export class SeatDto {
  /** Row letters + number, unique within the event, e.g. `D12`. */
  label: string;
  section: string;
  priceCents: number;
  currency: string;
  /** free, held or booked; never who holds it. */
  @ApiProperty({ enum: ['free', 'held', 'booked'] })
  status: SeatStatus;
}
