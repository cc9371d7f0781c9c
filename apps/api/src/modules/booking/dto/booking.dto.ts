import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import type { BookingStatus } from '../booking.repository';

export class BookingDto {
  /** Booking id (UUID). */
  id: string;

  @ApiProperty({ enum: ['held', 'confirmed', 'released', 'expired', 'cancelled'] })
  status: BookingStatus;

  eventId: string;

  /** Seat labels of this booking. */
  seats: string[];

  /** Sum of the seats' prices in minor units. */
  amountCents: number;

  currency: string;

  /** When the hold lapses unless paid. */
  expiresAt: string;

  /** Fencing token of the hold, a 64-bit integer as a decimal string. */
  fencingToken: string;

  createdAt: string;

  /** Best-available holds only: whether the seats are adjacent in one row. */
  @ApiPropertyOptional({ example: true })
  nextToEachOther?: boolean;
}
