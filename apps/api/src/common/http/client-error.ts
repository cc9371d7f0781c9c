import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { STATUS_CODES } from 'node:http';

/**
 * How often Node looks for requests past HEADERS_TIMEOUT_MS / REQUEST_TIMEOUT_MS: a deadline is
 * honoured within this (Node's default, 30 s, would let a slow client stay 30 s past it). Each
 * look walks the connections still receiving a request: cheap.
 */
export const TIMEOUT_CHECK_INTERVAL_MS = 500;

const PROBLEMS: Record<string, [status: number, code: string, title: string, detail: string]> = {
  // Node's headersTimeout and requestTimeout both end a request with this code.
  ERR_HTTP_REQUEST_TIMEOUT: [
    408,
    'REQUEST.TIMEOUT',
    'Request timeout',
    'The request did not arrive in time (its headers, or the whole of it); nothing was done and the connection is closed.',
  ],
  HPE_HEADER_OVERFLOW: [
    431,
    'REQUEST.HEADERS_TOO_LARGE',
    'Request header fields too large',
    'The request headers are too large; the connection is closed.',
  ],
};
const MALFORMED: [number, string, string, string] = [
  400,
  'REQUEST.INVALID',
  'Bad request',
  'The request is not valid HTTP; the connection is closed.',
];

/**
 * Fastify's clientErrorHandler: Node gave up on a request before any route saw it (a timeout, an
 * unparsable request). Answers application/problem+json like every other error, then closes the
 * socket, as Node and Fastify do; nothing is written when an answer is already on its way.
 */
export function answerClientError(error: Error & { code?: string }, socket: Socket): void {
  // A reset connection is gone already: nobody to answer.
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const response = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage;
  if (socket.writable && !response?.headersSent) {
    const [status, code, title, detail] = PROBLEMS[error.code ?? ''] ?? MALFORMED;
    const body = JSON.stringify({
      type: `https://seatlock.dev/problems/${code.toLowerCase()}`,
      title,
      status,
      detail,
      code,
    });
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\n` +
        'Content-Type: application/problem+json\r\n' +
        // What every answer carries (security-headers.ts); this one bypasses Fastify's hooks.
        'X-Content-Type-Options: nosniff\r\n' +
        'Referrer-Policy: no-referrer\r\n' +
        `Content-Length: ${Buffer.byteLength(body)}\r\n` +
        'Connection: close\r\n\r\n' +
        body,
    );
  }
  socket.destroy(error);
}
