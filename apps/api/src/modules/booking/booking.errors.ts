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

  static notEnoughTogether(quantity: number, section?: string): BookingError {
    return new BookingError(
      'BOOKING.NOT_ENOUGH_TOGETHER',
      409,
      'Not enough seats together',
      `No ${quantity} adjacent free seats in one row${section ? ` of ${section}` : ''}; ask with together: false for seats apart`,
      { quantity },
    );
  }

  static soldOut(quantity: number, available: number, section?: string): BookingError {
    return new BookingError(
      'BOOKING.SOLD_OUT',
      409,
      'Sold out',
      `${quantity} seats requested; ${available} free${section ? ` in ${section}` : ''}`,
      { quantity, available },
    );
  }

  static orphanSeats(orphanSeats: string[]): BookingError {
    return new BookingError(
      'BOOKING.ORPHAN_SEAT',
      422,
      'Hold would strand a seat',
      `This event does not sell holds that leave a single free seat stranded: ${orphanSeats.join(', ')}; include it or choose seats next to it`,
      { orphanSeats },
    );
  }

  static customerLimit(limit: number, current: number): BookingError {
    return new BookingError(
      'BOOKING.CUSTOMER_LIMIT',
      409,
      'Seat limit reached',
      `One customer may hold or have booked at most ${limit} seats for this event; you have ${current}`,
      { limit, current },
    );
  }

  static cannotExtend(reason: 'not_held' | 'max_extensions' | 'max_lifetime'): BookingError {
    const detail = {
      not_held: 'Only a held booking within its TTL can be extended; a lapsed hold is not revived',
      max_extensions: 'This hold was already extended as often as allowed',
      max_lifetime: 'This hold already lasts as long as a hold may',
    }[reason];
    return new BookingError('BOOKING.CANNOT_EXTEND', 409, 'Hold cannot be extended', detail, {
      reason,
    });
  }

  static unknownSection(section: string, sections: readonly string[]): BookingError {
    return new BookingError(
      'BOOKING.UNKNOWN_SECTION',
      422,
      'Unknown section',
      `This event has no section named ${section}; its sections: ${sections.join(', ')}`,
      { errors: [{ field: 'section', messages: [`unknown section: ${section}`] }] },
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
