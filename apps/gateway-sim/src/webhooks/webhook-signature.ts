import { createHmac, timingSafeEqual } from 'node:crypto';

/** The header every webhook carries: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">`. */
export const SIGNATURE_HEADER = 'Gateway-Signature';

function hmac(secret: string, body: string | Buffer, timestamp: number): string {
  return createHmac('sha256', secret).update(`${timestamp}.`).update(body).digest('hex');
}

/** Signs a raw body as the simulator does; `timestamp` in unix seconds. */
export function signPayload(
  secret: string,
  body: string | Buffer,
  timestamp: number = Math.floor(Date.now() / 1000),
): string {
  return `t=${timestamp},v1=${hmac(secret, body, timestamp)}`;
}

/**
 * True when `header` holds a `v1` signature of `body` made with `secret`, timestamped within
 * `toleranceSec` of `now` (unix seconds) — the tolerance is what makes a captured request useless
 * for a replay later. Several `v1` entries are allowed (a secret being rotated).
 */
export function verifySignature(
  secret: string,
  body: string | Buffer,
  header: string | undefined,
  toleranceSec = 300,
  now: number = Math.floor(Date.now() / 1000),
): boolean {
  if (!header) return false;
  let timestamp: number | undefined;
  const signatures: string[] = [];
  for (const part of header.split(',')) {
    const [name, value] = part.trim().split('=', 2);
    if (name === 't' && /^\d{1,12}$/.test(value ?? '')) timestamp = Number(value);
    if (name === 'v1' && /^[0-9a-f]{64}$/.test(value ?? '')) signatures.push(value);
  }
  if (timestamp === undefined || signatures.length === 0) return false;
  if (Math.abs(now - timestamp) > toleranceSec) return false;
  const expected = Buffer.from(hmac(secret, body, timestamp), 'hex');
  return signatures.some((signature) => timingSafeEqual(Buffer.from(signature, 'hex'), expected));
}
