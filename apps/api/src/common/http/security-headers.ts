import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

/**
 * On every answer: a browser never guesses a type other than the one we name (a JSON body is never
 * run as a script or shown as a page), and no page of ours sends its URL on as a Referer.
 */
const EVERY_ANSWER: readonly [string, string][] = [
  ['x-content-type-options', 'nosniff'],
  ['referrer-policy', 'no-referrer'],
];

/**
 * The seat-map page (`GET /`) may run only its own script and styles and talk only to this origin,
 * so a seat or event name can never become code; its script adds every listener itself (no inline
 * handlers). No page of ours may be framed (clickjacking).
 */
const PAGE_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  "img-src 'self' data:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/**
 * Swagger UI (`/docs`): its scripts are files of ours too, but its HTML and its React components
 * carry inline styles (a <style> block, style attributes), and its icons are data: images. Nothing
 * leaves this origin: "Try it out" calls the API here.
 */
const DOCS_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "font-src 'self' data:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

const DOCS = /^\/docs(\/|\?|$)/;

function setEveryAnswer(reply: FastifyReply): void {
  for (const [name, value] of EVERY_ANSWER) reply.header(name, value);
}

/**
 * The security headers, in one place. An onRequest hook sets those every answer carries, so they
 * are already on the reply when a route takes the socket over (the seat stream copies the reply's
 * headers); an onSend hook sets them again on answers sent before that hook ran (another onRequest
 * hook refusing a request, e.g. the request gate's 503) and adds a Content-Security-Policy to HTML.
 * Register it before any other onRequest hook.
 */
export function registerSecurityHeaders(fastify: FastifyInstance): void {
  fastify.addHook('onRequest', (_request: FastifyRequest, reply: FastifyReply, done) => {
    setEveryAnswer(reply);
    done();
  });
  fastify.addHook(
    'onSend',
    (request: FastifyRequest, reply: FastifyReply, payload: unknown, done) => {
      if (!reply.hasHeader('x-content-type-options')) setEveryAnswer(reply);
      const type = reply.getHeader('content-type');
      if (typeof type === 'string' && type.startsWith('text/html')) {
        reply.header('content-security-policy', DOCS.test(request.url) ? DOCS_POLICY : PAGE_POLICY);
      }
      done(null, payload);
    },
  );
}
