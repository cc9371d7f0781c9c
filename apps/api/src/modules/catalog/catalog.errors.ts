import { DomainError } from '../../common/errors/domain.error';

/** Coded failures of the catalog module. */
export class CatalogError extends DomainError {
  static eventNotFound(eventId: string): CatalogError {
    return new CatalogError(
      'CATALOG.EVENT_NOT_FOUND',
      404,
      'Event not found',
      `No event with id ${eventId}`,
    );
  }

  static tooManySeats(count: number, max: number): CatalogError {
    return new CatalogError(
      'CATALOG.TOO_MANY_SEATS',
      422,
      'Too many seats',
      `The seat map has ${count} seats; an event may have at most ${max}`,
      { errors: [{ field: 'sections', messages: [`at most ${max} seats in all`] }] },
    );
  }

  static duplicateSections(names: string[]): CatalogError {
    return new CatalogError(
      'CATALOG.DUPLICATE_SECTIONS',
      422,
      'Duplicate section names',
      `Section names must be unique; repeated: ${names.join(', ')}`,
      { errors: [{ field: 'sections', messages: [`repeated names: ${names.join(', ')}`] }] },
    );
  }
}
