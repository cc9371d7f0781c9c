import { randomBytes } from 'node:crypto';
import { plainToInstance } from 'class-transformer';
import { validateSync, type ValidationError } from 'class-validator';
import { GatewayEnvironment } from './gateway-environment';

export const LOCAL_DATABASE_URL = 'postgres://postgres:postgres@127.0.0.1:5432/seatlock';

const NUMERIC_SETTINGS = new Set([
  'GATEWAY_PORT',
  'GATEWAY_SLOW_MS',
  'GATEWAY_ASYNC_DELAY_MS',
  'GATEWAY_WEBHOOK_DUPLICATE_RATE',
  'GATEWAY_WEBHOOK_MAX_DELAY_MS',
  'GATEWAY_WEBHOOK_MAX_ATTEMPTS',
  'GATEWAY_WEBHOOK_RETRY_BASE_MS',
]);

/** Only GATEWAY_* settings; strict numbers, so "10abc" stays a string and fails validation. */
function coerce(raw: Record<string, unknown>): Record<string, unknown> {
  const values: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(raw)) {
    if (!name.startsWith('GATEWAY_') || value === '' || value === undefined) continue;
    values[name] =
      NUMERIC_SETTINGS.has(name) &&
      typeof value === 'string' &&
      /^-?\d+(\.\d+)?$/.test(value.trim())
        ? Number(value)
        : value;
  }
  return values;
}

function describe(error: ValidationError): string {
  const reasons = Object.values(error.constraints ?? {}).join('; ');
  // The secret's value stays out of the message: start-up errors end up in shared logs.
  const value =
    error.property === 'GATEWAY_WEBHOOK_SECRET' ? '<hidden>' : JSON.stringify(error.value);
  return `  ${error.property}=${value}: ${reasons}`;
}

/**
 * Reads and validates the simulator's settings; throws one message naming every bad variable.
 * GATEWAY_DATABASE_URL falls back to DATABASE_URL, then to the local PostgreSQL.
 */
export function loadGatewayEnvironment(raw: Record<string, unknown>): GatewayEnvironment {
  const values = coerce(raw);
  values.GATEWAY_DATABASE_URL ??= raw.DATABASE_URL || LOCAL_DATABASE_URL;
  const config = plainToInstance(GatewayEnvironment, values, { exposeDefaultValues: true });
  const errors = validateSync(config, { forbidUnknownValues: false, stopAtFirstError: true });
  if (errors.length > 0) {
    throw new Error(`Invalid gateway simulator configuration:\n${errors.map(describe).join('\n')}`);
  }
  const secret = config.GATEWAY_WEBHOOK_SECRET;
  if (raw.NODE_ENV === 'production' && (!secret || secret.length < 32)) {
    throw new Error(
      "NODE_ENV=production needs GATEWAY_WEBHOOK_SECRET set to the API's secret, at least 32 random characters (e.g. openssl rand -hex 32).",
    );
  }
  config.GATEWAY_WEBHOOK_SECRET ??= `whsec_${randomBytes(32).toString('base64url')}`;
  return config;
}
