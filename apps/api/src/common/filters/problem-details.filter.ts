import {
  type ArgumentsHost,
  Catch,
  type ExceptionFilter,
  HttpException,
  Logger,
} from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { QueryFailedError } from 'typeorm';
import { isPgUnavailableCode, PG_UNIQUE_VIOLATION, pgErrorCode } from '../../database/pg-error';
import { DomainError } from '../errors/domain.error';
import { problemBody } from '../http/problem-body';
import { IDEMPOTENT_REPLAYED_HEADER } from '../idempotency/idempotency-headers';
import { ReplayedResponse } from '../idempotency/replayed-response';

interface Problem {
  status: number;
  code: string;
  title: string;
  detail: string;
  extensions?: Record<string, unknown>;
  headers?: Record<string, string>;
}

const HTTP_CODES: Record<number, [code: string, title: string]> = {
  400: ['REQUEST.INVALID', 'Bad request'],
  401: ['AUTH.UNAUTHORIZED', 'Unauthorized'],
  403: ['AUTH.FORBIDDEN', 'Forbidden'],
  404: ['HTTP.NOT_FOUND', 'Not found'],
  405: ['HTTP.METHOD_NOT_ALLOWED', 'Method not allowed'],
  406: ['HTTP.NOT_ACCEPTABLE', 'Not acceptable'],
  413: ['REQUEST.TOO_LARGE', 'Payload too large'],
  415: ['REQUEST.UNSUPPORTED_MEDIA_TYPE', 'Unsupported media type'],
  429: ['REQUEST.RATE_LIMITED', 'Too many requests'],
};

/** Fastify's own request errors (body parsing, size) carry a 4xx statusCode and an FST_ code. */
function isClientError(error: unknown): error is Error & { statusCode: number; code?: string } {
  const status = (error as { statusCode?: unknown })?.statusCode;
  return error instanceof Error && typeof status === 'number' && status >= 400 && status < 500;
}

/** Connection-level failures: the database is down or out of reach, not this request's fault. */
function isDatabaseUnavailable(error: unknown): boolean {
  const code = pgErrorCode(error);
  const message = error instanceof Error ? error.message : '';
  return (
    isPgUnavailableCode(code) ||
    ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE'].includes(code ?? '') ||
    // TypeORM's words for a connection that died under a query runner (PostgreSQL restarting).
    /Connection terminated|timeout exceeded when trying to connect|(connection provided by a query runner was|query runner) already released/i.test(
      message,
    )
  );
}

function httpProblem(status: number, detail: string): Problem {
  const [code, title] = HTTP_CODES[status] ?? [`HTTP.${status}`, 'Request failed'];
  return { status, code, title, detail };
}

/** A refused body is read and dropped up to this much (then the connection is cut). */
const DRAIN_MAX_BYTES = 64 * 1024 * 1024;
const DRAIN_MAX_MS = 10_000;

/**
 * Answers a too-large request once its body has arrived. A client still sending (undici, node:http
 * with a 10 MB body) whose connection is closed under it sees EPIPE or a reset, never the 413; so
 * the rest of the body is read and dropped, within limits, and the connection closed after the
 * answer.
 */
function drainThen(request: FastifyRequest, reply: FastifyReply, send: () => void): void {
  const raw = request.raw;
  let drained = 0;
  let done = false;
  const finish = () => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    raw.removeListener('data', count);
    reply.header('connection', 'close');
    send();
  };
  const count = (chunk: Buffer) => {
    drained += chunk.length;
    if (drained > DRAIN_MAX_BYTES) finish();
  };
  const timer = setTimeout(finish, DRAIN_MAX_MS);
  raw.on('data', count);
  raw.once('end', finish);
  raw.once('error', finish);
  raw.resume();
}

/**
 * The one place errors become responses: application/problem+json `{type, title, status, detail,
 * code}` plus extensions. Unknown errors are logged and answered 500 without internals.
 */
@Catch()
export class ProblemDetailsFilter implements ExceptionFilter {
  private readonly logger = new Logger('ProblemDetails');

  catch(exception: unknown, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    const request = http.getRequest<FastifyRequest>();
    const reply = http.getResponse<FastifyReply>();
    if (exception instanceof ReplayedResponse) {
      // A stored answer to an idempotent request: sent exactly as it was the first time.
      reply
        .status(exception.status)
        .header('content-type', 'application/problem+json')
        .header(IDEMPOTENT_REPLAYED_HEADER, 'true')
        .send(exception.body);
      return;
    }
    const problem = this.toProblem(exception, request);
    const body = problemBody(problem, request.url);
    const send = () => {
      for (const [name, value] of Object.entries(problem.headers ?? {})) reply.header(name, value);
      reply.status(problem.status).header('content-type', 'application/problem+json').send(body);
    };
    if (problem.status === 413 && !request.raw.complete) drainThen(request, reply, send);
    else send();
  }

  private toProblem(exception: unknown, request: FastifyRequest): Problem {
    if (exception instanceof DomainError) {
      return {
        status: exception.status,
        code: exception.code,
        title: exception.title,
        detail: exception.message,
        extensions: exception.extensions,
        headers: exception.headers,
      };
    }
    if (exception instanceof HttpException) {
      const status = exception.getStatus();
      const response = exception.getResponse();
      // Terminus answers an unready service with its checks; keep them in the problem body.
      if (typeof response === 'object' && response !== null && 'details' in response) {
        return {
          status,
          code: 'HEALTH.NOT_READY',
          title: 'Not ready',
          detail: 'A required dependency is down',
          extensions: { checks: response },
        };
      }
      if (status === 429) {
        return { ...httpProblem(429, 'Rate limit reached; retry after the Retry-After delay') };
      }
      if (status < 500) return httpProblem(status, this.httpDetail(exception));
    }
    if (isClientError(exception)) {
      return httpProblem(exception.statusCode, exception.message);
    }
    if (exception instanceof QueryFailedError) {
      if (pgErrorCode(exception) === PG_UNIQUE_VIOLATION) {
        return {
          status: 409,
          code: 'CONFLICT.DUPLICATE',
          title: 'Conflict',
          detail: 'A resource with the same unique value already exists',
        };
      }
    }
    if (isDatabaseUnavailable(exception)) {
      this.logger.error(
        { err: exception, method: request.method, url: request.url },
        'PostgreSQL unavailable; answered 503',
      );
      return {
        status: 503,
        code: 'SERVICE.DATABASE_UNAVAILABLE',
        title: 'Service unavailable',
        detail: 'The database cannot be reached right now; nothing was changed. Retry shortly.',
        headers: { 'Retry-After': '2' },
      };
    }
    this.logger.error(
      { err: exception, method: request.method, url: request.url },
      'Unhandled error answered with 500',
    );
    return {
      status: 500,
      code: 'INTERNAL',
      title: 'Internal server error',
      detail: 'The server failed to handle this request; it has been logged',
    };
  }

  private httpDetail(exception: HttpException): string {
    const response = exception.getResponse();
    if (typeof response === 'string') return response;
    const message = (response as { message?: unknown }).message;
    if (Array.isArray(message)) return message.join('; ');
    return typeof message === 'string' ? message : exception.message;
  }
}
