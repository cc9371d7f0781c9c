import { ValidateBy, type ValidationArguments } from 'class-validator';

/** The property must be absent when `other` is present: for request shapes that are one or the other. */
export function Excludes(other: string, why: string): PropertyDecorator {
  return ValidateBy({
    name: 'excludes',
    constraints: [other],
    validator: {
      validate: (value: unknown, args?: ValidationArguments) =>
        value === undefined || (args?.object as Record<string, unknown>)[other] === undefined,
      defaultMessage: (args?: ValidationArguments) =>
        `${args?.property} cannot be given with ${other}: ${why}`,
    },
  });
}
