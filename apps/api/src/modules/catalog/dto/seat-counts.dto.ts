/** Seats by status; a hold past its TTL counts as free. */
export class SeatCountsDto {
  total: number;
  free: number;
  held: number;
  booked: number;
}
