/**
 * There is no Docker engine on the build machines, so `docker compose config` cannot run.
 * Instead, docker-compose.yml is validated against the Compose specification schema with
 * dclint (its style rules are all switched off: only the schema is checked), and its
 * start-up ordering, published ports and secrets are asserted structurally.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { freePort } from './support/redis-server';

const repoRoot = resolve(__dirname, '..');
const composeFile = join(repoRoot, 'docker-compose.yml');

// The package only exports "." and "./package.json", so locate the CLI from its package.json.
const dclintPackageJson = require.resolve('dclint/package.json');
const dclintCli = join(dirname(dclintPackageJson), 'bin', 'dclint.cjs');
// `yaml` is a declared dependency of dclint: resolve it from there rather than adding a dependency.
const { parse: parseYaml } = createRequire(dclintPackageJson)('yaml') as {
  parse: (source: string) => unknown;
};

// Every style/best-practice rule dclint 3.x ships, set to 0 (off). Schema validation
// ("invalid-schema") and YAML parsing ("invalid-yaml") are not rules and always run.
// If a dclint upgrade adds a rule, the first test fails and names it: add it here.
const DCLINT_STYLE_RULES = [
  'no-build-and-image',
  'no-duplicate-container-names',
  'no-duplicate-exported-ports',
  'no-quotes-in-volumes',
  'no-unbound-port-interfaces',
  'no-version-field',
  'require-project-name-field',
  'require-quotes-in-ports',
  'service-container-name-regex',
  'service-dependencies-alphabetical-order',
  'service-image-require-explicit-tag',
  'service-keys-order',
  'service-ports-alphabetical-order',
  'services-alphabetical-order',
  'top-level-properties-order',
];

interface LintMessage {
  rule: string;
  type: string;
  message: string;
}

interface LintRun {
  status: number | null;
  messages: LintMessage[];
  output: string;
}

let workDir: string;
let configFile: string;

function lint(file: string): LintRun {
  const result = spawnSync(
    process.execPath,
    [dclintCli, file, '--config', configFile, '--formatter', 'json', '--color', 'false'],
    { cwd: workDir, encoding: 'utf8', timeout: 30_000 },
  );
  const output = `${result.stdout}\n${result.stderr}`;
  let messages: LintMessage[] = [];
  try {
    const report = JSON.parse(result.stdout) as { messages: LintMessage[] }[];
    messages = report.flatMap((entry) => entry.messages);
  } catch {
    // Not JSON (crash, bad config): leave messages empty; callers also check the exit status.
  }
  return { status: result.status, messages, output };
}

type Service = {
  build?: unknown;
  network_mode?: string;
  command?: string[] | string;
  environment?: Record<string, string>;
  ports?: string[];
  healthcheck?: { test?: unknown };
  depends_on?: Record<string, { condition?: string }> | string[];
};

function conditionsOf(service: Service): Record<string, string | undefined> {
  const dependsOn = service.depends_on;
  if (dependsOn === undefined || Array.isArray(dependsOn)) {
    throw new Error('depends_on must be a map with a condition per service');
  }
  return Object.fromEntries(Object.entries(dependsOn).map(([name, dep]) => [name, dep.condition]));
}

/**
 * Compose's variable interpolation, enough for this file: `${VAR}`, `${VAR:-default}`,
 * `${VAR-default}` and the required forms `${VAR:?message}` / `${VAR?message}`, which fail.
 */
function interpolate(value: string, env: Record<string, string | undefined>): string {
  return value.replace(
    /\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}/g,
    (_match, name: string, operator: string | undefined, argument: string) => {
      const set = env[name];
      const missing = operator?.startsWith(':') ? !set : set === undefined;
      if (operator?.endsWith('?') && missing) throw new Error(`${name}: ${argument}`);
      if (operator?.endsWith('-') && missing) return argument;
      return set ?? '';
    },
  );
}

/** Every `${NAME…}` in the file with what follows the name (`:-…`, `:?…`, or nothing). */
function variableReferences(source: string): { name: string; operator: string }[] {
  return [...source.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)([^}]*)\}/g)].map((match) => ({
    name: match[1],
    operator: match[2].slice(0, 2),
  }));
}

const SECRET_NAME = /SECRET|TOKEN|PASSWORD/;

function packageScripts(): Record<string, string> {
  return (
    JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as {
      scripts: Record<string, string>;
    }
  ).scripts;
}

describe('docker-compose.yml', () => {
  beforeAll(() => {
    workDir = mkdtempSync(join(tmpdir(), 'seatlock-dclint-'));
    configFile = join(workDir, 'dclint.config.json');
    writeFileSync(
      configFile,
      JSON.stringify({ rules: Object.fromEntries(DCLINT_STYLE_RULES.map((rule) => [rule, 0])) }),
    );
  });

  afterAll(() => {
    rmSync(workDir, { recursive: true, force: true });
  });

  it('is valid against the Compose specification schema (dclint)', () => {
    const run = lint(composeFile);

    expect(run.messages).toEqual([]);
    expect(run.status).toBe(0);
  });

  it('the schema check is not a no-op: dclint rejects an invalid compose file', () => {
    const invalidFile = join(workDir, 'docker-compose.yml');
    writeFileSync(
      invalidFile,
      [
        'services:',
        '  api:',
        '    image: seatlock-api:dev',
        '    ports: not-a-list',
        '    depends_on:',
        '      postgres:',
        '        condition: bogus',
        '',
      ].join('\n'),
    );

    const run = lint(invalidFile);

    expect(run.status).toBe(1);
    expect(run.messages.map((message) => message.rule)).toContain('invalid-schema');
  });

  describe('structure', () => {
    let services: Record<string, Service>;

    beforeAll(() => {
      const doc = parseYaml(readFileSync(composeFile, 'utf8')) as {
        services: Record<string, Service>;
      };
      services = doc.services;
    });

    it('has no obsolete top-level "version" key', () => {
      const doc = parseYaml(readFileSync(composeFile, 'utf8')) as Record<string, unknown>;
      expect(doc).not.toHaveProperty('version');
    });

    it.each(['postgres', 'redis', 'gateway'])('%s has a healthcheck', (name) => {
      expect(services[name]).toBeDefined();
      expect(services[name].healthcheck?.test).toBeDefined();
    });

    it('api is built from the Dockerfile', () => {
      expect(services.api).toBeDefined();
      expect(services.api.build).toBeDefined();
    });

    it("the image's command is npm start's, heap cap included", () => {
      const dockerfile = readFileSync(join(repoRoot, 'Dockerfile'), 'utf8');
      const cmd = dockerfile.split('\n').filter((line) => line.startsWith('CMD '));
      expect(cmd).toHaveLength(1);
      const scripts = packageScripts();
      expect(JSON.parse(cmd[0].slice('CMD '.length))).toEqual(scripts.start.split(' '));
      expect(scripts.start).toMatch(/--max-old-space-size=\d+/);
    });

    it('api waits for postgres, redis and the gateway to be healthy', () => {
      expect(conditionsOf(services.api)).toEqual({
        postgres: 'service_healthy',
        redis: 'service_healthy',
        gateway: 'service_healthy',
      });
    });

    it('gateway runs the simulator from the API image, as npm run start:gateway does', () => {
      const gateway = services.gateway;
      expect(gateway).toBeDefined();
      expect(gateway.build).toEqual(services.api.build);
      const scripts = packageScripts();
      expect(gateway.command).toEqual(scripts['start:gateway'].split(' '));
      expect(conditionsOf(gateway)).toEqual({ postgres: 'service_healthy' });
    });

    it('gateway and api are wired to each other inside the compose network', () => {
      const gateway = services.gateway.environment ?? {};
      const api = services.api.environment ?? {};
      const gatewayPort = gateway.GATEWAY_PORT;
      const apiPort = interpolate(services.api.ports?.[0] ?? '', {})
        .split(':')
        .pop();

      expect(api.GATEWAY_URL).toBe(`http://gateway:${gatewayPort}`);
      expect(gateway.GATEWAY_WEBHOOK_URL).toBe(`http://api:${apiPort}/payments/webhook`);
      expect(gateway.GATEWAY_DATABASE_URL).toBe(api.DATABASE_URL);
    });

    it('gateway and api share one webhook secret: the same required variable, no default', () => {
      const gateway = services.gateway.environment ?? {};
      const api = services.api.environment ?? {};

      expect(gateway.GATEWAY_WEBHOOK_SECRET).toMatch(/^\$\{GATEWAY_WEBHOOK_SECRET:\?[^}]+\}$/);
      expect(api.GATEWAY_WEBHOOK_SECRET).toBe(gateway.GATEWAY_WEBHOOK_SECRET);
      const secret = 'a'.repeat(48);
      expect(interpolate(gateway.GATEWAY_WEBHOOK_SECRET, { GATEWAY_WEBHOOK_SECRET: secret })).toBe(
        secret,
      );
    });

    it('publishes only the API: no other service has a port on the host', () => {
      const publishing = Object.entries(services)
        .filter(([, service]) => service.ports !== undefined || service.network_mode === 'host')
        .map(([name]) => name);

      expect(publishing).toEqual(['api']);
      expect(services.api.ports).toHaveLength(1);
    });

    it("binds the API's port to 127.0.0.1 unless API_BIND_ADDRESS says otherwise", () => {
      const [port] = services.api.ports ?? [];

      expect(interpolate(port, {})).toBe('127.0.0.1:3000:3000');
      expect(interpolate(port, { API_BIND_ADDRESS: '' })).toBe('127.0.0.1:3000:3000');
      expect(interpolate(port, { API_BIND_ADDRESS: '0.0.0.0' })).toBe('0.0.0.0:3000:3000');
      // The variable is documented where compose is.
      expect(readFileSync(join(repoRoot, 'docs', 'running.md'), 'utf8')).toContain(
        'API_BIND_ADDRESS',
      );
    });

    it('no secret, token or password variable has a default: each must be set', () => {
      const references = variableReferences(readFileSync(composeFile, 'utf8')).filter((reference) =>
        SECRET_NAME.test(reference.name),
      );
      // Not vacuous: both of the API's secrets are read from the environment.
      expect(references.map((reference) => reference.name)).toEqual(
        expect.arrayContaining(['ADMIN_TOKEN', 'GATEWAY_WEBHOOK_SECRET']),
      );

      expect(references.filter((reference) => reference.operator !== ':?')).toEqual([]);
    });

    it('every secret or token setting comes from its required variable, never a literal', () => {
      const settings = Object.entries(services).flatMap(([service, { environment }]) =>
        Object.entries(environment ?? {})
          .filter(([key]) => /SECRET|TOKEN/.test(key))
          .map(([key, value]) => ({ service, key, value })),
      );
      expect(settings.map(({ service, key }) => `${service}.${key}`).sort()).toEqual([
        'api.ADMIN_TOKEN',
        'api.GATEWAY_WEBHOOK_SECRET',
        'gateway.GATEWAY_WEBHOOK_SECRET',
      ]);

      for (const { key, value } of settings) {
        expect(value).toMatch(new RegExp(`^\\$\\{${key}:\\?[^}]+\\}$`));
        // Unset or empty, compose stops with the variable's own message.
        expect(() => interpolate(value, {})).toThrow(new RegExp(`^${key}: .*32\\+ random`));
        expect(() => interpolate(value, { [key]: '' })).toThrow(key);
      }
    });

    it('api sends its email to mailpit, inside the compose network', () => {
      const mailpit = services.mailpit;
      expect(mailpit).toBeDefined();
      expect(mailpit.healthcheck?.test).toBeDefined();
      expect(services.api.environment?.SMTP_URL).toBe('smtp://mailpit:1025');
    });

    it('the image runs on a supported Node LTS (even major, 24 or later), in every stage', () => {
      const dockerfile = readFileSync(join(repoRoot, 'Dockerfile'), 'utf8');
      const images = [...dockerfile.matchAll(/^FROM\s+(\S+)/gm)].map((match) => match[1]);
      expect(images).toHaveLength(2);

      for (const image of images) {
        const major = Number(/^node:(\d+)-/.exec(image)?.[1]);
        expect(major % 2 === 0 && major >= 24).toBe(true);
      }
      expect(new Set(images).size).toBe(1);
    });

    it('gateway has a healthcheck that passes on a live simulator and fails on a closed port', async () => {
      const test = services.gateway.healthcheck?.test as string[];
      expect(test.slice(0, 3)).toEqual(['CMD', 'node', '-e']);
      const script = test[3];
      const port = services.gateway.environment?.GATEWAY_PORT;
      expect(script).toContain(`http://127.0.0.1:${port}/health`);
      const probe = (url: string) =>
        spawnSync(process.execPath, ['-e', script.replace(`http://127.0.0.1:${port}`, url)], {
          timeout: 10_000,
        }).status;

      // The e2e global setup's simulator stands in for the container's.
      expect(probe(process.env.GATEWAY_URL!)).toBe(0);
      expect(probe(`http://127.0.0.1:${await freePort()}`)).toBe(1);
    });
  });
});
