import { type CanActivate, type ExecutionContext, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { FastifyRequest } from 'fastify';
import {
  AUTH_KIND,
  type AuthenticatedCustomer,
  type AuthKind,
} from '../../common/auth/auth.decorators';
import { clientAddress } from '../../common/rate-limit/client-address';
import { RateLimitError } from '../../common/rate-limit/rate-limit.errors';
import { RateLimiter, type RateLimitRule } from '../../common/rate-limit/rate-limiter';
import { SKIP_RATE_LIMIT } from '../../common/rate-limit/skip-rate-limit.decorator';
import { AppConfigService } from '../../config/app-config.service';
import { CustomerError } from './customer.errors';
import { CustomerService } from './customer.service';

const BEARER = /^Bearer +([\x21-\x7e]{1,512})$/i;

type GuardedRequest = FastifyRequest & { customer?: AuthenticatedCustomer };

/**
 * Registered once as APP_GUARD: authentication and rate limits, decided together because each
 * needs the other. Routes marked @CustomerAuth need a customer's token, @AdminAuth the admin token;
 * unmarked routes are public. RATE_LIMIT_PER_MINUTE counts per customer once a token is known, and
 * per client address for anonymous calls and failed authentications — so neither a new spelling of
 * the header nor a random token opens a new budget — and a client past its budget gets no new
 * token looked up in PostgreSQL (known customers on its address are still served).
 */
@Injectable()
export class BearerAuthGuard implements CanActivate {
  private readonly rule: RateLimitRule;

  constructor(
    private readonly reflector: Reflector,
    private readonly customers: CustomerService,
    private readonly limits: RateLimiter,
    config: AppConfigService,
  ) {
    this.rule = { limit: config.get('RATE_LIMIT_PER_MINUTE'), windowMs: 60_000 };
  }

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const targets = [context.getHandler(), context.getClass()];
    const kind = this.reflector.getAllAndOverride<AuthKind | undefined>(AUTH_KIND, targets);
    const request = context.switchToHttp().getRequest<GuardedRequest>();
    const header = request.headers.authorization;
    const token = header ? BEARER.exec(header)?.[1] : undefined;
    const client = `ip:${clientAddress(request.ip)}`;

    if (!kind) {
      if (this.reflector.getAllAndOverride<boolean>(SKIP_RATE_LIMIT, targets)) return true;
      // Public: no look-up; a customer this instance knows counts against its own budget.
      const known = token ? this.customers.known(token) : undefined;
      await this.count(known ? `customer:${known.id}` : client);
      return true;
    }
    if (!header) return this.refuse(client, 'Missing Authorization: Bearer <token> header');
    if (!token) return this.refuse(client, 'Authorization header must be "Bearer <token>"');
    // The operator's token is not limited; a wrong guess at it is a failed authentication.
    if (kind === 'admin' && this.customers.isAdminToken(token)) return true;

    const customer = await this.customers.authenticate(token, () => this.mayLookUp(client));
    if (!customer) return this.refuse(client, 'Unknown or revoked bearer token');
    await this.count(`customer:${customer.id}`);
    if (kind === 'admin') throw CustomerError.forbidden('This route needs the admin token');
    request.customer = customer;
    return true;
  }

  /** A failed authentication: counted against the client's address, then 401 (or 429). */
  private async refuse(client: string, detail: string): Promise<never> {
    await this.count(client);
    throw CustomerError.unauthorized(detail);
  }

  /** A client past its budget has a new token looked up only after its window ends. */
  private async mayLookUp(client: string): Promise<void> {
    const verdict = await this.limits.peek(client, this.rule);
    if (verdict.count >= this.rule.limit && this.rule.limit > 0) this.tooMany(verdict);
  }

  private async count(bucket: string): Promise<void> {
    const verdict = await this.limits.hit(bucket, this.rule);
    if (!verdict.allowed) this.tooMany(verdict);
  }

  private tooMany(verdict: { retryAfterSeconds: number }): never {
    throw RateLimitError.exceeded(
      verdict.retryAfterSeconds,
      `Rate limit of ${this.rule.limit} requests a minute reached; retry after the Retry-After delay`,
    );
  }
}
