import { randomBytes } from 'node:crypto';
import type { EnvironmentVariables } from './environment-variables';

/** The settings that are secrets: never given a default, never printed in a configuration error. */
export const SECRET_SETTINGS = ['ADMIN_TOKEN', 'GATEWAY_WEBHOOK_SECRET'] as const;
type SecretSetting = (typeof SECRET_SETTINGS)[number];

/** Shorter secrets are refused in production: 32 characters of a random token are ≥ 190 bits. */
export const PRODUCTION_SECRET_MIN_LENGTH = 32;

/**
 * Every secret value this repository has published, as a default, an example or a test fixture:
 * anyone can read them, so production refuses them whatever their length.
 */
export const PUBLISHED_SECRETS: readonly string[] = [
  'whsec_dev_only_change_me',
  'change-me-admin-token',
  'e2e-admin-token-0123456789',
  'built-app-admin-token-0123',
  'whsec_e2e_payments_0123456789',
  'whsec_e2e_secret_0123456789',
  'whsec_e2e_crash_0123456789',
  'whsec_unit_0123456789',
  'whsec_test_secret',
  'whsec_old_secret_0',
  'whsec_other_secret',
  'whsec_someone_else',
  'whsec_other',
  'whsec_test',
  'whsec_wrong',
  'whsec_upgrade',
];

const PLACEHOLDER = /change[-_ ]?me|dev[-_]only|example|placeholder/i;

function weakness(value: string | undefined): string | null {
  if (!value) return 'is unset';
  if (PUBLISHED_SECRETS.includes(value) || PLACEHOLDER.test(value)) {
    return 'is a value published in the repository';
  }
  if (value.length < PRODUCTION_SECRET_MIN_LENGTH) {
    return `is shorter than ${PRODUCTION_SECRET_MIN_LENGTH} characters`;
  }
  return null;
}

/**
 * Why NODE_ENV=production must not start with these secrets, as one sentence (naming the settings,
 * never their values); null when both are set, long enough and unpublished.
 */
export function productionSecretProblem(
  config: Pick<EnvironmentVariables, SecretSetting>,
): string | null {
  const problems = SECRET_SETTINGS.flatMap((name) => {
    const why = weakness(config[name]);
    return why ? [`${name} ${why}`] : [];
  });
  if (problems.length === 0) return null;
  return (
    `NODE_ENV=production needs ADMIN_TOKEN and GATEWAY_WEBHOOK_SECRET set to unpublished random ` +
    `values of at least ${PRODUCTION_SECRET_MIN_LENGTH} characters, but ${problems.join(' and ')} ` +
    `(e.g. openssl rand -hex 32).`
  );
}

/**
 * Outside production, fills each unset secret with a random one for this run; answers the names it
 * made up, so the caller can print what someone must be told.
 */
/** A new random secret: `prefix_` and 256 bits (ADMIN_TOKEN 192), base64url. */
export function randomSecret(prefix: 'adm' | 'whsec'): string {
  return `${prefix}_${randomBytes(prefix === 'adm' ? 24 : 32).toString('base64url')}`;
}

/** Values this process made up, so whoever prints them can tell a made-up one from a given one. */
const madeUp = new Set<string>();

/** Whether this value was made up by makeMissingSecrets in this process. */
export function wasMadeUp(value: string | undefined): boolean {
  return value !== undefined && madeUp.has(value);
}

export function makeMissingSecrets(
  config: Pick<EnvironmentVariables, SecretSetting>,
): SecretSetting[] {
  const made: SecretSetting[] = [];
  if (!config.ADMIN_TOKEN) {
    config.ADMIN_TOKEN = randomSecret('adm');
    madeUp.add(config.ADMIN_TOKEN);
    made.push('ADMIN_TOKEN');
  }
  if (!config.GATEWAY_WEBHOOK_SECRET) {
    config.GATEWAY_WEBHOOK_SECRET = randomSecret('whsec');
    madeUp.add(config.GATEWAY_WEBHOOK_SECRET);
    made.push('GATEWAY_WEBHOOK_SECRET');
  }
  return made;
}
