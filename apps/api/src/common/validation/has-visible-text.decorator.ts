import { Matches } from 'class-validator';

/** At least one letter, digit, punctuation mark or symbol: no names made of spaces or invisible marks. */
export function HasVisibleText(): PropertyDecorator {
  return Matches(/[\p{L}\p{N}\p{P}\p{S}]/u, {
    message: ({ property }) => `${property} must contain visible text`,
  });
}
