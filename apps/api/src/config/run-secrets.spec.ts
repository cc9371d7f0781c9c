import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  makeMissingSecrets,
  productionSecretProblem,
  PUBLISHED_SECRETS,
  SECRET_SETTINGS,
} from './run-secrets';
import { validateEnvironment } from './validate-environment';

const DATABASE_URL = 'postgres://postgres:postgres@127.0.0.1:5432/seatlock';
const strong = (seed: string) => seed.repeat(64).slice(0, 40);

describe('run secrets', () => {
  it('makes up each unset secret, differently each run, and says which', () => {
    const first: Record<string, string | undefined> = {};
    const second: Record<string, string | undefined> = { ADMIN_TOKEN: 'a'.repeat(20) };
    expect(makeMissingSecrets(first)).toEqual(SECRET_SETTINGS);
    expect(makeMissingSecrets(second)).toEqual(['GATEWAY_WEBHOOK_SECRET']);
    expect(first.ADMIN_TOKEN).toMatch(/^adm_[\w-]{32}$/);
    expect(first.GATEWAY_WEBHOOK_SECRET).toMatch(/^whsec_[\w-]{43}$/);
    expect(second.ADMIN_TOKEN).toBe('a'.repeat(20));
    expect(second.GATEWAY_WEBHOOK_SECRET).not.toBe(first.GATEWAY_WEBHOOK_SECRET);
  });

  it('production: one sentence naming each weak setting, never its value', () => {
    expect(
      productionSecretProblem({ ADMIN_TOKEN: strong('k'), GATEWAY_WEBHOOK_SECRET: strong('w') }),
    ).toBeNull();
    // Made here, not written: a literal would be a value this repository publishes.
    const short = `short-${'x'.repeat(15)}`;
    const problem = productionSecretProblem({
      ADMIN_TOKEN: short,
      GATEWAY_WEBHOOK_SECRET: undefined,
    });
    expect(problem).toMatch(
      /ADMIN_TOKEN is shorter than 32 characters and GATEWAY_WEBHOOK_SECRET is unset/,
    );
    expect(problem).not.toContain(short);
    expect(problem).not.toContain('\n');
    for (const value of PUBLISHED_SECRETS) {
      expect(
        productionSecretProblem({ ADMIN_TOKEN: strong('k'), GATEWAY_WEBHOOK_SECRET: value }),
      ).toMatch(/GATEWAY_WEBHOOK_SECRET is a value published in the repository/);
    }
  });

  it('validateEnvironment refuses production with weak secrets, and hides secrets in its errors', () => {
    expect(() => validateEnvironment({ DATABASE_URL, NODE_ENV: 'production' })).toThrow(
      /^NODE_ENV=production needs ADMIN_TOKEN and GATEWAY_WEBHOOK_SECRET/,
    );
    const config = validateEnvironment({
      DATABASE_URL,
      NODE_ENV: 'production',
      ADMIN_TOKEN: strong('k'),
      GATEWAY_WEBHOOK_SECRET: strong('w'),
    });
    expect(config.ADMIN_TOKEN).toBe(strong('k'));
    // Outside production a short (but not too short) secret is accepted, its value never echoed.
    expect(() => validateEnvironment({ DATABASE_URL, ADMIN_TOKEN: 'tiny-token' })).toThrow(
      /ADMIN_TOKEN=<hidden>/,
    );
  });

  it('lists every webhook secret and admin token written in the repository', () => {
    const root = join(__dirname, '../../../..');
    const files = execFileSync('git', ['ls-files'], { cwd: root, encoding: 'utf8' })
      .split('\n')
      .filter((file) => /\.(ts|ya?ml|md|example|json)$|^\.env/.test(file));
    const written = new Set<string>();
    for (const file of files) {
      const text = readFileSync(join(root, file), 'utf8');
      for (const match of text.matchAll(/['"`](whsec_[\w-]+)['"`]/g)) written.add(match[1]);
      for (const match of text.matchAll(/(?:ADMIN_TOKEN\s*[:=]\s*|ADMIN_TOKEN = )'([\w-]{12,})'/g))
        written.add(match[1]);
      for (const match of text.matchAll(/GATEWAY_WEBHOOK_SECRET(?:=|:\s*')([\w-]{8,})/g))
        written.add(match[1]);
    }
    const missing = [...written].filter((value) => !PUBLISHED_SECRETS.includes(value));
    expect(missing).toEqual([]);
    expect(written.size).toBeGreaterThan(5);
  });
});
