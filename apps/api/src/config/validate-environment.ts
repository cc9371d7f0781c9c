import { plainToInstance } from 'class-transformer';
import { validateSync, type ValidationError } from 'class-validator';
import { EnvironmentVariables } from './environment-variables';
import { productionSecretProblem, SECRET_SETTINGS } from './run-secrets';

const INTEGER_SETTINGS = new Set([
  'PORT',
  'HOLD_TTL_SECONDS',
  'MAX_SEATS_PER_BOOKING',
  'HOLD_MAX_LIFETIME_SECONDS',
  'HOLD_MAX_EXTENSIONS',
  'MAX_SEATS_PER_CUSTOMER_PER_EVENT',
  'SWEEP_INTERVAL_MS',
  'FALLBACK_CONCURRENCY',
  'FALLBACK_QUEUE',
  'MAX_REQUESTS_IN_FLIGHT',
  'STREAM_MAX_SUBSCRIBERS',
  'STREAM_MAX_PER_IP',
  'STREAM_POLL_MS',
  'STREAM_IDLE_DRAIN_MS',
  'STREAM_PING_MS',
  'STREAM_HISTORY',
  'MAX_REQUESTS_QUEUED',
  'HEADERS_TIMEOUT_MS',
  'REQUEST_TIMEOUT_MS',
  'DB_POOL_SIZE',
  'RATE_LIMIT_PER_MINUTE',
  'REGISTRATIONS_PER_IP_PER_HOUR',
  'REDIS_COMMAND_TIMEOUT_MS',
  'GATEWAY_TIMEOUT_MS',
  'RECONCILE_INTERVAL_MS',
  'NOTIFY_POLL_MS',
  'NOTIFY_RETRY_BASE_MS',
  'NOTIFY_MAX_ATTEMPTS',
  'NOTIFY_BATCH_SIZE',
  'NOTIFY_DISPATCH_CONCURRENCY',
  'NOTIFY_LEASE_MS',
  'NOTIFY_RETENTION_HOURS',
  'NOTIFY_SEND_TIMEOUT_MS',
]);

/** Strict: "10abc" or "1.5" for an integer setting stays a string and fails validation. */
function coerce(raw: Record<string, unknown>): Record<string, unknown> {
  const values: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(raw)) {
    if (value === '') continue;
    values[name] =
      INTEGER_SETTINGS.has(name) && typeof value === 'string' && /^-?\d+$/.test(value.trim())
        ? Number(value)
        : value;
  }
  return values;
}

function describe(error: ValidationError): string {
  const reasons = Object.values(error.constraints ?? {}).join('; ');
  // A secret's value stays out of the message: start-up errors end up in shared logs.
  const value = [...SECRET_SETTINGS, 'METRICS_TOKEN'].includes(error.property)
    ? '<hidden>'
    : JSON.stringify(error.value);
  return `  ${error.property}=${value}: ${reasons}`;
}

/** ConfigModule's `validate` hook: the process refuses to start and names every bad variable. */
export function validateEnvironment(raw: Record<string, unknown>): EnvironmentVariables {
  const config = plainToInstance(EnvironmentVariables, coerce(raw), {
    exposeDefaultValues: true,
  });
  // Checked first, so a weak secret in production is refused in one sentence.
  const weak = config.NODE_ENV === 'production' ? productionSecretProblem(config) : null;
  if (weak) throw new Error(weak);
  const errors = validateSync(config, {
    skipMissingProperties: false,
    forbidUnknownValues: false,
    stopAtFirstError: true,
  });
  if (errors.length > 0) {
    throw new Error(`Invalid configuration:\n${errors.map(describe).join('\n')}`);
  }
  return config;
}
