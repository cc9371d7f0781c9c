import type { ValidationError } from 'class-validator';
import { DomainError } from './domain.error';

export interface FieldError {
  field: string;
  messages: string[];
}

function flatten(errors: ValidationError[], parent = ''): FieldError[] {
  return errors.flatMap((error) => {
    const field = parent
      ? /^\d+$/.test(error.property)
        ? `${parent}[${error.property}]`
        : `${parent}.${error.property}`
      : error.property;
    const own = error.constraints ? [{ field, messages: Object.values(error.constraints) }] : [];
    return [...own, ...flatten(error.children ?? [], field)];
  });
}

/** 400 naming every bad field: `errors: [{field, messages}]`. */
export class RequestValidationError extends DomainError {
  constructor(readonly fieldErrors: FieldError[]) {
    super(
      'REQUEST.VALIDATION_FAILED',
      400,
      'Request validation failed',
      fieldErrors.map((e) => `${e.field}: ${e.messages.join(', ')}`).join('; '),
      { errors: fieldErrors },
    );
  }

  static fromClassValidator(errors: ValidationError[]): RequestValidationError {
    return new RequestValidationError(flatten(errors));
  }
}
