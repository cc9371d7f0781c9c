import { applyDecorators, UseInterceptors } from '@nestjs/common';
import { ApiHeader } from '@nestjs/swagger';
import { ApiProblems } from '../http/api-problems.decorator';
import { IDEMPOTENCY_KEY_HEADER, MAX_IDEMPOTENCY_KEY_LENGTH } from './idempotency-headers';
import { IdempotencyInterceptor } from './idempotency.interceptor';

/** A POST that requires an Idempotency-Key and replays its stored answer on a retry. */
export function Idempotent(): MethodDecorator {
  return applyDecorators(
    UseInterceptors(IdempotencyInterceptor),
    ApiHeader({
      name: IDEMPOTENCY_KEY_HEADER,
      required: true,
      description:
        `Any unique string up to ${MAX_IDEMPOTENCY_KEY_LENGTH} characters (a UUID is best). The same ` +
        'key with the same body returns the stored answer (header Idempotent-Replayed: true); with ' +
        'another body 422; while the first request runs 409. Kept 24 h, per customer.',
      schema: { type: 'string', maxLength: MAX_IDEMPOTENCY_KEY_LENGTH },
    }),
    ApiProblems(400, 409, 422),
  );
}
