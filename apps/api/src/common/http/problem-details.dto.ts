/** RFC 9457 problem details, as every error of this API is answered. */
export class ProblemDetailsDto {
  /** A URI naming the kind of problem. */
  type: string;
  /** Short summary of the kind of problem. */
  title: string;
  /** HTTP status code. */
  status: number;
  /** What went wrong in this request. */
  detail: string;
  /** Stable machine-readable code, e.g. `BOOKING.SEAT_UNAVAILABLE`. */
  code: string;
  /** The request path. */
  instance?: string;
  /** For validation errors: every bad field with its messages. */
  errors?: { field: string; messages: string[] }[];
  /** For 409 on holds: the seats someone else holds or has booked. */
  conflictingSeats?: string[];
  /** For 422 on holds: the seat labels this event does not have, or that repeat. */
  unknownSeats?: string[];
}
