import { createParamDecorator, type ExecutionContext } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { GatewayError } from '../common/gateway.error';

/** The `Idempotency-Key` header (1–255 characters), or undefined when absent. */
export const IdempotencyKey = createParamDecorator(
  (_data: unknown, context: ExecutionContext): string | undefined => {
    const value = context.switchToHttp().getRequest<FastifyRequest>().headers['idempotency-key'];
    if (value === undefined) return undefined;
    if (typeof value !== 'string' || value.length === 0 || value.length > 255) {
      throw GatewayError.invalidRequest(
        'Idempotency-Key must be one header of 1 to 255 characters',
        'Idempotency-Key',
      );
    }
    return value;
  },
);
