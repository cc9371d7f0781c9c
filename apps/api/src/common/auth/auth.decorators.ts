import {
  applyDecorators,
  createParamDecorator,
  type ExecutionContext,
  SetMetadata,
} from '@nestjs/common';
import { ApiBearerAuth } from '@nestjs/swagger';
import { ApiProblems } from '../http/api-problems.decorator';

export const AUTH_KIND = 'seatlock:auth-kind';
export type AuthKind = 'customer' | 'admin';

/** The caller resolved from its bearer token. */
export interface AuthenticatedCustomer {
  id: string;
  email: string;
  name: string;
}

/** Route needs a customer's bearer token. */
export function CustomerAuth(): MethodDecorator & ClassDecorator {
  return applyDecorators(SetMetadata(AUTH_KIND, 'customer'), ApiBearerAuth(), ApiProblems(401));
}

/** Route needs the admin bearer token (ADMIN_TOKEN). */
export function AdminAuth(): MethodDecorator & ClassDecorator {
  return applyDecorators(SetMetadata(AUTH_KIND, 'admin'), ApiBearerAuth(), ApiProblems(401, 403));
}

/** The authenticated customer of this request (set by the bearer guard). */
export const CurrentCustomer = createParamDecorator(
  (_data: unknown, context: ExecutionContext): AuthenticatedCustomer =>
    context.switchToHttp().getRequest<{ customer: AuthenticatedCustomer }>().customer,
);
