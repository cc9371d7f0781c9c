import { ValidateBy, type ValidationOptions } from 'class-validator';

const MAX_KEYS = 50;
const MAX_KEY_LENGTH = 40;
const MAX_VALUE_LENGTH = 500;

/** A flat object of strings within Stripe's metadata limits (50 keys, 40/500 characters). */
export function IsStringMap(options?: ValidationOptions): PropertyDecorator {
  return ValidateBy(
    {
      name: 'isStringMap',
      validator: {
        validate: (value: unknown) =>
          typeof value === 'object' &&
          value !== null &&
          !Array.isArray(value) &&
          Object.keys(value).length <= MAX_KEYS &&
          Object.entries(value).every(
            ([key, item]) =>
              key.length > 0 &&
              key.length <= MAX_KEY_LENGTH &&
              typeof item === 'string' &&
              item.length <= MAX_VALUE_LENGTH,
          ),
        defaultMessage: () =>
          `$property must be an object of at most ${MAX_KEYS} string values ` +
          `(keys up to ${MAX_KEY_LENGTH}, values up to ${MAX_VALUE_LENGTH} characters)`,
      },
    },
    options,
  );
}
