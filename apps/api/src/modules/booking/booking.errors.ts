import { DomainError } from '../../common/errors/domain.error';

/** Coded failures of the booking module. */
export class BookingError extends DomainError {
  static seatsUnavailable(conflictingSeats: string[]): BookingError {
    return new BookingError(
      'BOOKING.SEAT_UNAVAILABLE',
      409,
      'Seats unavailable',
      `Held or booked by someone else: ${conflictingSeats.join(', ')}`,
      { conflictingSeats },
    );
  }

  static unknownSeats(unknownSeats: string[]): BookingError {
    return new BookingError(
      'BOOKING.UNKNOWN_SEATS',
      422,
      'Unknown seats',
      `This event has no seats labelled ${unknownSeats.join(', ')}`,
      {
        unknownSeats,
        errors: [{ field: 'seatIds', messages: [`unknown: ${unknownSeats.join(', ')}`] }],
      },
    );
  }

  static duplicateSeats(duplicates: string[]): BookingError {
    return new BookingError(
      'BOOKING.DUPLICATE_SEATS',
      422,
      'Duplicate seats',
      `Each seat may appear once; repeated: ${duplicates.join(', ')}`,
      {
        duplicateSeats: duplicates,
        errors: [{ field: 'seatIds', messages: [`repeated: ${duplicates.join(', ')}`] }],
      },
    );
  }

  static tooManySeats(count: number, max: number): BookingError {
    return new BookingError(
      'BOOKING.TOO_MANY_SEATS',
      422,
      'Too many seats',
      `${count} seats requested; one booking may hold at most ${max}`,
      { errors: [{ field: 'seatIds', messages: [`at most ${max} seats per booking`] }] },
    );
  }

  static notFound(bookingId: string): BookingError {
    return new BookingError(
      'BOOKING.NOT_FOUND',
      404,
      'Booking not found',
      `No booking ${bookingId}`,
    );
  }

  static notPayable(status: string): BookingError {
    return new BookingError(
      'BOOKING.NOT_PAYABLE',
      409,
      'Booking cannot be paid',
      status === 'confirmed'
        ? 'The booking is already confirmed and paid'
        : `The booking is ${status}; only a held booking within its TTL can be paid`,
      { currentStatus: status },
    );
  }

  static overloaded(): BookingError {
    return new BookingError(
      'BOOKING.OVERLOADED',
      503,
      'Temporarily overloaded',
      'The lock service is unreachable and too many holds are waiting for the database; retry shortly',
      {},
      { 'Retry-After': '1' },
    );
  }
}
