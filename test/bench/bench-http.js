'use strict';

/* The benchmarks' set-up and check requests to the API (the measured load has its own clients). */

const { request } = require('undici');
const { BenchError } = require('./bench-support');

/**
 * A request function with a default timeout: `call(dispatcher, baseUrl, method, route, options)`
 * answers `{status, body, text}`, the body parsed when it is JSON. Options: `body`, `token`,
 * `idempotencyKey`, `timeoutMs`.
 */
function httpCaller({ timeoutMs: defaultTimeoutMs }) {
  return async function call(dispatcher, baseUrl, method, route, options = {}) {
    const headers = {};
    if (options.token) headers.authorization = `Bearer ${options.token}`;
    if (options.idempotencyKey) headers['idempotency-key'] = options.idempotencyKey;
    if (options.body !== undefined) headers['content-type'] = 'application/json';
    const response = await request(`${baseUrl}${route}`, {
      method,
      headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
      dispatcher,
      signal: AbortSignal.timeout(options.timeoutMs ?? defaultTimeoutMs),
    });
    return readAnswer(response);
  };
}

/** An undici response as `{status, body, text}`, the body parsed when it is JSON. */
async function readAnswer(response) {
  const text = await response.body.text();
  let body = text;
  if (String(response.headers['content-type'] || '').includes('json') && text) {
    try {
      body = JSON.parse(text);
    } catch {
      body = text;
    }
  }
  return { status: response.statusCode, body, text };
}

function expectStatus(response, status, what) {
  if (response.status !== status) {
    throw new BenchError(`${what}: expected ${status}, got ${response.status} ${response.text}`);
  }
  return response.body;
}

module.exports = { expectStatus, httpCaller, readAnswer };
