import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Http2ServerRequest } from 'node:http2';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { SwaggerModule } from '@nestjs/swagger';
import { Registry } from 'prom-client';
import { Logger } from 'nestjs-pino';
import { AppModule } from './app.module';
import { parseJsonBody } from './common/http/json-body.parser';
import { RequestGate } from './common/http/request-gate';
import { AppConfigService } from './config/app-config.service';
import { createOpenApiDocument } from './openapi/openapi-document';

/** Requests larger than this are refused with 413 before they are parsed. */
const BODY_LIMIT_BYTES = 256 * 1024;

const REQUEST_ID = /^[\w.:-]{1,128}$/;

/** The one route that needs its raw body (to check the gateway's signature). */
const WEBHOOK_PATH = '/payments/webhook';

/** A caller's X-Request-Id when it is sane, else a fresh one; logs and answers carry it. */
function requestId(request: IncomingMessage | Http2ServerRequest): string {
  const given = request.headers['x-request-id'];
  return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
}

/**
 * Builds the application exactly as production runs it (Fastify, logger, Swagger); main.ts and the
 * e2e tests both start it from here.
 */
export async function createApp(env: Record<string, string> = {}): Promise<NestFastifyApplication> {
  const adapter = new FastifyAdapter({
    bodyLimit: BODY_LIMIT_BYTES,
    genReqId: requestId,
    frameworkErrors: (error: Error, request: FastifyRequest, reply: FastifyReply) => {
      // Fastify answers these (e.g. an undecodable URL) before Nest sees the request.
      void reply.code(400).header('content-type', 'application/problem+json').send({
        type: 'https://seatlock.dev/problems/request.invalid',
        title: 'Bad request',
        status: 400,
        detail: error.message,
        code: 'REQUEST.INVALID',
        instance: request.url,
      });
    },
  });
  // The first onRequest hook, ahead of Nest's middleware: see RequestGate.
  const gate = new RequestGate();
  adapter.getInstance().addHook('onRequest', gate.onRequest);
  const app = await NestFactory.create<NestFastifyApplication>(AppModule.forRoot(env), adapter, {
    bufferLogs: true,
    bodyParser: false,
  });
  const config = app.get(AppConfigService);
  gate.configure({
    inFlight: config.get('MAX_REQUESTS_IN_FLIGHT'),
    queued: config.get('MAX_REQUESTS_QUEUED'),
  });
  gate.register(app.get(Registry));
  app.useLogger(app.get(Logger));
  app.enableShutdownHooks();
  const fastify = app.getHttpAdapter().getInstance();
  fastify.addHook('onRequest', async (request, reply) => {
    reply.header('X-Request-Id', request.id);
  });
  // JSON only: any other body type is a 415, never half-parsed into a "missing fields" 400.
  fastify.removeAllContentTypeParsers();
  fastify.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    try {
      // Webhook signatures are computed over the exact bytes received, so keep them.
      if (request.url.startsWith(WEBHOOK_PATH))
        (request as { rawBody?: string }).rawBody = body as string;
      done(null, parseJsonBody(body as string));
    } catch (error) {
      done(error as Error, undefined);
    }
  });

  SwaggerModule.setup('docs', app, createOpenApiDocument(app), {
    jsonDocumentUrl: 'docs-json',
  });
  return app;
}
