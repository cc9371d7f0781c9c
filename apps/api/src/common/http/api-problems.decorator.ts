import { applyDecorators } from '@nestjs/common';
import { ApiExtraModels, ApiResponse, getSchemaPath } from '@nestjs/swagger';
import { ProblemDetailsDto } from './problem-details.dto';

const DESCRIPTIONS: Record<number, string> = {
  400: 'The request does not parse or breaks its schema; every bad field is named',
  401: 'Missing or invalid bearer token',
  402: 'The card was declined; the reason is in the body',
  403: 'The token is valid but not allowed here',
  404: 'Not found (or not yours)',
  409: 'Conflicts with the current state',
  413: 'Body too large',
  422: 'Well-formed but cannot be done',
  429: 'Too many requests',
  502: 'The payment gateway failed; retry with the same Idempotency-Key',
  503: 'Temporarily unable to serve; retry after the Retry-After delay',
};

/** Documents the problem+json answers a route can give. */
export function ApiProblems(...statuses: number[]): MethodDecorator & ClassDecorator {
  return applyDecorators(
    ApiExtraModels(ProblemDetailsDto),
    ...statuses.map((status) =>
      ApiResponse({
        status,
        description: DESCRIPTIONS[status] ?? 'Error',
        content: {
          'application/problem+json': {
            schema: { $ref: getSchemaPath(ProblemDetailsDto) },
          },
        },
      }),
    ),
  );
}
