import {
  type ArgumentsHost,
  Catch,
  type ExceptionFilter,
  HttpException,
  Logger,
} from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { GatewayError } from './gateway.error';

/** Fastify's own request errors (bad JSON, wrong content type, too large) carry a 4xx status. */
function clientErrorStatus(error: unknown): number | undefined {
  const status = (error as { statusCode?: unknown } | null)?.statusCode;
  return typeof status === 'number' && status >= 400 && status < 500 ? status : undefined;
}

/**
 * Every error as Stripe shapes it: `{error: {type, code, message, ...}}`. Unknown errors are logged
 * and answered 500 `api_error` without internals.
 */
@Catch()
export class GatewayErrorFilter implements ExceptionFilter {
  private readonly logger = new Logger('GatewayError');

  catch(exception: unknown, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    const request = http.getRequest<FastifyRequest>();
    const { status, body } = this.toError(exception, request).toResponse();
    void http.getResponse<FastifyReply>().status(status).send(body);
  }

  private toError(exception: unknown, request: FastifyRequest): GatewayError {
    if (exception instanceof GatewayError) return exception;
    if (exception instanceof HttpException && exception.getStatus() === 404) {
      return new GatewayError(404, {
        type: 'invalid_request_error',
        code: 'resource_missing',
        message: `Unrecognized request URL (${request.method}: ${request.url})`,
      });
    }
    const status =
      exception instanceof HttpException && exception.getStatus() < 500
        ? exception.getStatus()
        : clientErrorStatus(exception);
    if (status !== undefined) {
      return new GatewayError(status, {
        type: 'invalid_request_error',
        message: exception instanceof Error ? exception.message : 'Invalid request',
      });
    }
    this.logger.error(
      { err: exception, method: request.method, url: request.url },
      'Unhandled error answered with 500',
    );
    return new GatewayError(500, {
      type: 'api_error',
      message: 'The gateway simulator failed to handle this request; it has been logged',
    });
  }
}
