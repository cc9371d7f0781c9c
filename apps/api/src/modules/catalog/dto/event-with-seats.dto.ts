import { EventDto } from './event.dto';
import { SeatDto } from './seat.dto';

/** A created event with its full seat map. */
export class EventWithSeatsDto extends EventDto {
  seats: SeatDto[];
}
