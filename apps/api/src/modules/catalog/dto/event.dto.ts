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
  seatCounts: SeatCountsDto;
  createdAt: string;
}
