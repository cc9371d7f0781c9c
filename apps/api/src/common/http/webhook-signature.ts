import { createHmac, timingSafeEqual } from 'node:crypto';

/** Default tolerance: a signed request older than this cannot be replayed. */
export const SIGNATURE_TOLERANCE_SECONDS = 300;

function hmac(secret: string, timestamp: number, body: string | Buffer): Buffer {
  return createHmac('sha256', secret).update(`${timestamp}.`).update(body).digest();
}

/** `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">`, the scheme both directions use. */
export function signWebhook(
  secret: string,
  body: string | Buffer,
  timestamp = Math.floor(Date.now() / 1000),
): string {
  return `t=${timestamp},v1=${hmac(secret, timestamp, body).toString('hex')}`;
}

/**
 * Why `header` does not sign `body` with `secret` (missing, malformed, too old or too new, wrong), or
 * null when it does. Several v1 entries are accepted, so a secret can be rotated.
 */
export function webhookSignatureProblem(
  secret: string,
  body: string | Buffer,
  header: string | undefined,
  now = Math.floor(Date.now() / 1000),
  toleranceSeconds = SIGNATURE_TOLERANCE_SECONDS,
): string | null {
  if (!header) return 'the signature header is missing';
  let timestamp: number | undefined;
  const signatures: Buffer[] = [];
  for (const part of header.split(',')) {
    const [name, value = ''] = part.trim().split('=', 2);
    if (name === 't' && /^\d{1,12}$/.test(value)) timestamp = Number(value);
    if (name === 'v1' && /^[0-9a-f]{64}$/.test(value)) signatures.push(Buffer.from(value, 'hex'));
  }
  if (timestamp === undefined || signatures.length === 0) {
    return 'the signature header must look like t=<unix seconds>,v1=<hex HMAC-SHA256>';
  }
  if (Math.abs(now - timestamp) > toleranceSeconds) {
    return `the signature timestamp is more than ${toleranceSeconds} s away from now`;
  }
  const expected = hmac(secret, timestamp, body);
  return signatures.some((signature) => timingSafeEqual(signature, expected))
    ? null
    : 'the signature does not match the body';
}
