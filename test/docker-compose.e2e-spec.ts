/**
 * There is no Docker engine on the build machines, so `docker compose config` cannot run.
 * Instead, docker-compose.yml is validated against the Compose specification schema with
 * dclint (its style rules are all switched off: only the schema is checked), and its
 * start-up ordering is asserted structurally.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { GatewayEnvironment } from '../apps/gateway-sim/src/config/gateway-environment';
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

    it('gateway and api are wired to each other with one shared webhook secret', () => {
      const gateway = services.gateway.environment ?? {};
      const api = services.api.environment ?? {};
      const gatewayPort = gateway.GATEWAY_PORT;
      const apiPort = services.api.ports?.[0]?.split(':').pop();

      expect(services.gateway.ports).toContain(`${gatewayPort}:${gatewayPort}`);
      expect(api.GATEWAY_URL).toBe(`http://gateway:${gatewayPort}`);
      expect(gateway.GATEWAY_WEBHOOK_URL).toBe(`http://api:${apiPort}/payments/webhook`);
      expect(gateway.GATEWAY_DATABASE_URL).toBe(api.DATABASE_URL);
      expect(api.GATEWAY_WEBHOOK_SECRET).toBe(gateway.GATEWAY_WEBHOOK_SECRET);
      // Overridable from the shell, with the simulator's own default.
      expect(gateway.GATEWAY_WEBHOOK_SECRET).toBe(
        `\${GATEWAY_WEBHOOK_SECRET:-${new GatewayEnvironment().GATEWAY_WEBHOOK_SECRET}}`,
      );
    });

    it('api sends its email to mailpit, whose SMTP port and web view are published', () => {
      const mailpit = services.mailpit;
      expect(mailpit).toBeDefined();
      expect(mailpit.healthcheck?.test).toBeDefined();
      expect(mailpit.ports).toEqual(expect.arrayContaining(['1025:1025', '8025:8025']));
      expect(services.api.environment?.SMTP_URL).toBe('smtp://mailpit:1025');
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
