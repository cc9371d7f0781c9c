import {
  type CallHandler,
  type ExecutionContext,
  Injectable,
  Logger,
  type NestInterceptor,
} from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { type Observable, from, lastValueFrom } from 'rxjs';
import type { AuthenticatedCustomer } from '../auth/auth.decorators';
import { AppConfigService } from '../../config/app-config.service';
import { DomainError } from '../errors/domain.error';
import { problemBody } from '../http/problem-body';
import {
  IDEMPOTENCY_KEY_HEADER,
  IDEMPOTENT_REPLAYED_HEADER,
  MAX_IDEMPOTENCY_KEY_LENGTH,
} from './idempotency-headers';
import { IdempotencyError } from './idempotency.errors';
import { IdempotencyRepository } from './idempotency.repository';
import {
  IDEMPOTENT_REQUEST,
  IdempotencyRefused,
  IdempotentRequest,
  requestFingerprint,
} from './idempotent-request';
import { ReplayedResponse } from './replayed-response';

const VISIBLE_ASCII = /^[\x21-\x7e]+$/;

/** Refusals before any work began: nothing to protect, and the corrected request may reuse the key. */
const NOT_STARTED = new Set([400, 401, 403, 404]);

/**
 * Answers worth replaying: final outcomes (402, 409, 422, …). Refusals before any work began are not
 * stored, nor are 5xx and "retry later" answers, so a retry runs again.
 */
function isStorable(error: unknown): error is DomainError {
  return (
    error instanceof DomainError &&
    error.status < 500 &&
    !NOT_STARTED.has(error.status) &&
    !error.headers['Retry-After']
  );
}

/**
 * Makes a customer's POST safe to retry (`Idempotency-Key` required): the first request with a key
 * runs and its answer, success or error, is stored; the same key and body get that answer again with
 * `Idempotent-Replayed: true`; another body is 422; a request while the first still runs is 409.
 * The handler claims the key in its own first statement (see IdempotentRequest); this interceptor
 * checks the header, answers a refused claim, and stores what the handler did not.
 */
@Injectable()
export class IdempotencyInterceptor implements NestInterceptor {
  private readonly logger = new Logger(IdempotencyInterceptor.name);

  constructor(
    private readonly store: IdempotencyRepository,
    private readonly config: AppConfigService,
  ) {}

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    return from(this.run(context, next));
  }

  private async run(context: ExecutionContext, next: CallHandler): Promise<unknown> {
    const http = context.switchToHttp();
    const request = http.getRequest<FastifyRequest & { customer: AuthenticatedCustomer }>();
    const reply = http.getResponse<FastifyReply>();
    const header = request.headers[IDEMPOTENCY_KEY_HEADER.toLowerCase()];
    if (header === undefined || header === '') throw IdempotencyError.keyMissing();
    if (
      typeof header !== 'string' ||
      header.length > MAX_IDEMPOTENCY_KEY_LENGTH ||
      !VISIBLE_ASCII.test(header)
    ) {
      throw IdempotencyError.keyInvalid();
    }
    const customerId = request.customer.id;
    const fingerprint = requestFingerprint(request.method, request.url, request.body);
    // Past the gateway's whole budget (and the reconciler's grace) a claim is surely abandoned.
    const leaseMs = this.config.get('GATEWAY_TIMEOUT_MS') * 2 + 30_000;

    const idempotent = new IdempotentRequest(
      customerId,
      header,
      fingerprint,
      leaseMs,
      reply.statusCode,
    );
    (request as unknown as Record<string, IdempotentRequest>)[IDEMPOTENT_REQUEST] = idempotent;

    let body: unknown;
    try {
      body = await lastValueFrom(next.handle(), { defaultValue: undefined });
    } catch (error) {
      if (error instanceof IdempotencyRefused) return this.refused(error, reply);
      if (!idempotent.claimed) throw error;
      if (isStorable(error)) {
        const stored = problemBody(
          {
            status: error.status,
            code: error.code,
            title: error.title,
            detail: error.message,
            extensions: error.extensions,
          },
          request.url,
        );
        await this.settle(() => this.store.complete(customerId, header, error.status, stored));
      } else {
        await this.settle(() => this.store.abandon(customerId, header));
      }
      throw error;
    }
    if (!idempotent.claimed) {
      throw new Error(`${request.method} ${request.url} answered without claiming its key`);
    }
    if (!idempotent.answered) {
      await this.settle(() => this.store.complete(customerId, header, reply.statusCode, body));
    }
    return body;
  }

  /** The key was not this request's: the stored answer again, 422 or 409. */
  private refused({ claim }: IdempotencyRefused, reply: FastifyReply): unknown {
    if (claim.kind === 'mismatch') throw IdempotencyError.keyReused();
    if (claim.kind === 'in_flight') throw IdempotencyError.inFlight();
    if (claim.status >= 400) throw new ReplayedResponse(claim.status, claim.body);
    reply.header(IDEMPOTENT_REPLAYED_HEADER, 'true');
    return claim.body;
  }

  /**
   * Storing the outcome must not turn a done request into a failed one: if PostgreSQL refuses now,
   * the claim's lease runs out and a retry runs again (the work itself is idempotent downstream).
   */
  private async settle(write: () => Promise<void>): Promise<void> {
    try {
      await write();
    } catch (error) {
      this.logger.error({ err: error }, 'Could not store an idempotent answer');
    }
  }
}
