import type { ValidationError } from 'class-validator';
import { GatewayError } from './gateway.error';

/** The first bad parameter as Stripe names it: `parameter_missing`, `_unknown` or `_invalid`. */
export function validationErrorFactory(errors: ValidationError[]): GatewayError {
  let error = errors[0];
  let param = error?.property ?? '';
  while (error && !error.constraints && error.children?.length) {
    error = error.children[0];
    param = `${param}[${error.property}]`;
  }
  const constraints = error?.constraints ?? {};
  if (constraints.whitelistValidation) {
    return GatewayError.invalidRequest(
      `Received unknown parameter: ${param}`,
      param,
      'parameter_unknown',
    );
  }
  if (error && error.value === undefined && param !== '') {
    return GatewayError.invalidRequest(
      `Missing required param: ${param}.`,
      param,
      'parameter_missing',
    );
  }
  const message = Object.values(constraints).join('; ') || 'The request body must be a JSON object';
  return GatewayError.invalidRequest(message, param || undefined);
}
