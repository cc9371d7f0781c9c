import { createHash, timingSafeEqual } from 'node:crypto';
import { type CanActivate, type ExecutionContext, Injectable } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { DomainError } from '../common/errors/domain.error';
import { AppConfigService } from '../config/app-config.service';

const BEARER = /^Bearer +(\S+)$/i;

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

/**
 * GET /metrics with METRICS_TOKEN set: only a scraper with `Authorization: Bearer <METRICS_TOKEN>`
 * (the metrics describe our load and internals). Unset: open, as a scrape inside a private network
 * needs nothing. Digests are compared, in constant time, so the answer's timing tells nothing of
 * the token.
 */
@Injectable()
export class MetricsTokenGuard implements CanActivate {
  private readonly expected: Buffer | null;

  constructor(config: AppConfigService) {
    const token = config.get('METRICS_TOKEN');
    this.expected = token ? digest(token) : null;
  }

  canActivate(context: ExecutionContext): boolean {
    if (!this.expected) return true;
    const header = context.switchToHttp().getRequest<FastifyRequest>().headers.authorization;
    const given = header ? BEARER.exec(header)?.[1] : undefined;
    if (given !== undefined && timingSafeEqual(digest(given), this.expected)) return true;
    throw new DomainError(
      'AUTH.UNAUTHORIZED',
      401,
      'Unauthorized',
      header
        ? 'Wrong metrics token'
        : 'GET /metrics needs Authorization: Bearer <METRICS_TOKEN> on this server',
      {},
      { 'WWW-Authenticate': 'Bearer' },
    );
  }
}
