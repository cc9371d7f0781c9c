import { randomUUID } from 'node:crypto';
import type { IncomingMessage, Server } from 'node:http';
import type { Http2ServerRequest } from 'node:http2';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { SwaggerModule } from '@nestjs/swagger';
import { Registry } from 'prom-client';
import { Logger } from 'nestjs-pino';
import { AppModule } from './app.module';
import { parseJsonBody } from './common/http/json-body.parser';
import { answerClientError, TIMEOUT_CHECK_INTERVAL_MS } from './common/http/client-error';
import { RequestGate } from './common/http/request-gate';
import { registerSecurityHeaders } from './common/http/security-headers';
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
  // Needed before the configuration is read (the adapter comes first); validated with it.
  const trustProxy = (env.TRUST_PROXY ?? process.env.TRUST_PROXY)?.trim();
  const adapter = new FastifyAdapter({
    bodyLimit: BODY_LIMIT_BYTES,
    // request.ip: the TCP peer, or, from a proxy named here, the client it forwards for.
    ...(trustProxy ? { trustProxy: trustProxy.split(/\s*,\s*/) } : {}),
    genReqId: requestId,
    // HEADERS_TIMEOUT_MS and REQUEST_TIMEOUT_MS are set on the server once the config is read
    // (below); how often Node checks them is a server creation option.
    http: { connectionsCheckingInterval: TIMEOUT_CHECK_INTERVAL_MS },
    // A timed-out (or unparsable) request is answered 408 (400, 431) problem+json, socket closed.
    clientErrorHandler: answerClientError,
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
  // Ahead of every other hook, so even a request refused at the door gets them.
  registerSecurityHeaders(adapter.getInstance());
  // The first onRequest hook, ahead of Nest's middleware: see RequestGate.
  const gate = new RequestGate(BODY_LIMIT_BYTES);
  gate.attach(adapter.getInstance());
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
  // Slow clients cannot hold the door: headers within HEADERS_TIMEOUT_MS, the whole request
  // within REQUEST_TIMEOUT_MS, else 408 and the socket closed (Fastify sets no request timeout;
  // Node's 60 s for headers was checked every 30 s).
  const server = app.getHttpServer() as Server;
  server.headersTimeout = config.get('HEADERS_TIMEOUT_MS');
  server.requestTimeout = config.get('REQUEST_TIMEOUT_MS');
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
      // Webhook signatures are computed over the exact bytes received: keep them, and leave the
      // parsing to the webhook service, after it has checked the signature (a forged body costs
      // an HMAC, not a JSON parse).
      if (request.url.startsWith(WEBHOOK_PATH)) {
        (request as { rawBody?: string }).rawBody = body as string;
        return done(null, undefined);
      }
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
