/** One step in a booking's life, oldest first. */
export class TimelineEntryDto {
  /** e.g. `booking.held`, `booking.released`, `booking.expired`. */
  type: string;
  at: string;
  /** What happened, in words. */
  detail: string;
}
