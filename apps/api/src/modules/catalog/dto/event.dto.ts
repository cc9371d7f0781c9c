import { ApiProperty } from '@nestjs/swagger';
import type { OrphanPolicy } from '../seat-map';
import { SeatCountsDto } from './seat-counts.dto';
import { SectionDto } from './section.dto';

export class EventDto {
  /** Event id (UUID). */
  id: string;
  name: string;
  venue: string;
  startsAt: string;
  /** ISO 4217 code of every price of this event. */
  currency: string;
  sections: SectionDto[];
  /**
   * `strict`: a hold that would leave a single free seat stranded between unavailable ones is
   * refused (422 BOOKING.ORPHAN_SEAT); `off`: no such check.
   */
  @ApiProperty({ enum: ['off', 'strict'], example: 'strict' })
  orphanPolicy: OrphanPolicy;
  seatCounts: SeatCountsDto;
  createdAt: string;
}
