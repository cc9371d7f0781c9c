import { createParamDecorator, type ExecutionContext } from '@nestjs/common';
import { clientAddress } from '../rate-limit/client-address';

/** The caller's address as rate limits count it (IPv4, or the /64 of an IPv6 address). */
export const ClientIp = createParamDecorator((_data: unknown, context: ExecutionContext): string =>
  clientAddress(context.switchToHttp().getRequest<{ ip?: string }>().ip),
);
