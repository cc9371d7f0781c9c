import { createHash } from 'node:crypto';

/** Whom a request counts against: its bearer token (hashed, never kept), else its client IP. */
export function rateLimitTracker(request: {
  headers?: Record<string, unknown>;
  ip?: string;
}): string {
  const authorization = request.headers?.authorization;
  if (typeof authorization === 'string' && authorization.length > 0) {
    return `token:${createHash('sha256').update(authorization).digest('base64url')}`;
  }
  return `ip:${String(request.ip)}`;
}
