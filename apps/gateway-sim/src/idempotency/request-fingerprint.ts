import { createHash } from 'node:crypto';

/** JSON with object keys sorted, so `{a, b}` and `{b, a}` count as the same body. */
function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.keys(value)
      .sort()
      .filter((key) => (value as Record<string, unknown>)[key] !== undefined)
      .map((key) => [key, canonical((value as Record<string, unknown>)[key])]),
  );
}

/** What an Idempotency-Key is bound to: the operation and its parameters. */
export function requestFingerprint(operation: string, parameters: unknown): string {
  return createHash('sha256')
    .update(`${operation}\n${JSON.stringify(canonical(parameters) ?? null)}`)
    .digest('hex');
}
