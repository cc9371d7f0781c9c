import { type CanActivate, type ExecutionContext, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { FastifyRequest } from 'fastify';
import {
  AUTH_KIND,
  type AuthenticatedCustomer,
  type AuthKind,
} from '../../common/auth/auth.decorators';
import { CustomerError } from './customer.errors';
import { CustomerService } from './customer.service';

const BEARER = /^Bearer +([\x21-\x7e]{1,512})$/i;

/**
 * Registered once as APP_GUARD: routes marked @CustomerAuth need a customer's token, @AdminAuth the
 * admin token; unmarked routes are public.
 */
@Injectable()
export class BearerAuthGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly customers: CustomerService,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const kind = this.reflector.getAllAndOverride<AuthKind | undefined>(AUTH_KIND, [
      context.getHandler(),
      context.getClass(),
    ]);
    if (!kind) return true;

    const request = context
      .switchToHttp()
      .getRequest<FastifyRequest & { customer?: AuthenticatedCustomer }>();
    const header = request.headers.authorization;
    if (!header) throw CustomerError.unauthorized('Missing Authorization: Bearer <token> header');
    const token = BEARER.exec(header)?.[1];
    if (!token) throw CustomerError.unauthorized('Authorization header must be "Bearer <token>"');

    if (kind === 'admin' && this.customers.isAdminToken(token)) return true;
    const customer = await this.customers.authenticate(token);
    if (!customer) throw CustomerError.unauthorized('Unknown or revoked bearer token');
    if (kind === 'admin') throw CustomerError.forbidden('This route needs the admin token');
    request.customer = customer;
    return true;
  }
}
