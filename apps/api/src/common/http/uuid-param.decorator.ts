import { Param, ParseUUIDPipe } from '@nestjs/common';
import { RequestValidationError } from '../errors/request-validation.error';

/** A path parameter that must be a UUID; anything else is a 400 naming the parameter. */
export function UuidParam(name: string): ParameterDecorator {
  return Param(
    name,
    new ParseUUIDPipe({
      exceptionFactory: () =>
        new RequestValidationError([{ field: name, messages: [`${name} must be a UUID`] }]),
    }),
  );
}
