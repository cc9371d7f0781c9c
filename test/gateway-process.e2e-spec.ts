/**
 * The gateway simulator runs as its own process wherever the API runs: the e2e global setup starts
 * one for the whole run, and `npm start` (the built API) starts one beside itself when GATEWAY_URL
 * is unset, and stops it with itself. Real processes, real ports; who owns a port is read from
 * /proc (Linux), so "a separate process" is checked, not assumed.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { PaymentGatewayProcess } from '../apps/api/src/payment-gateway-process';
import { BuiltApp, runToExit } from './support/built-app';
import { GatewayProcess, globalGatewayDatabaseUrl } from './support/gateway-process';
import { freePort } from './support/redis-server';
import { TEST_ADMIN_TOKEN, testDatabaseUrl, testRedisUrl } from './support/test-env';

/** The pid of the process listening on 127.0.0.1:`port` (or any address), from /proc. */
function listenerPid(port: number): number | undefined {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  const inodes = new Set<string>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of readFileSync(table, 'utf8').split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields[1]?.endsWith(`:${hexPort}`) && fields[3] === '0A') inodes.add(fields[9]);
    }
  }
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${entry}/fd`);
    } catch {
      continue; // gone, or not ours to read
    }
    for (const fd of fds) {
      try {
        const target = readlinkSync(`/proc/${entry}/fd/${fd}`);
        if (inodes.has(target.slice('socket:['.length, -1))) return Number(entry);
      } catch {
        // closed meanwhile
      }
    }
  }
  return undefined;
}

function parentPid(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // "pid (comm) state ppid …"; comm may hold spaces and parentheses.
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
}

function commandLine(pid: number): string[] {
  return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
}

/** The live (not zombie) processes whose parent is `pid`. */
function childrenOf(pid: number): number[] {
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .map(Number)
    .filter((candidate) => {
      try {
        const stat = readFileSync(`/proc/${candidate}/stat`, 'utf8');
        const [state] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        return parentPid(candidate) === pid && state !== 'Z';
      } catch {
        return false;
      }
    });
}

function portAnswers(port: number): Promise<boolean> {
  return new Promise((done) => {
    const socket = connect({ host: '127.0.0.1', port });
    const finish = (answered: boolean): void => {
      socket.destroy();
      done(answered);
    };
    socket.setTimeout(1000, () => finish(false));
    socket.once('connect', () => finish(true));
    socket.once('error', () => finish(false));
  });
}

async function waitUntilClosed(port: number, timeoutMs: number): Promise<number> {
  const started = Date.now();
  while (await portAnswers(port)) {
    if (Date.now() - started > timeoutMs) throw new Error(`port ${port} still answers`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return Date.now() - started;
}

async function createIntent(gatewayUrl: string): Promise<{ status: number; body: any }> {
  const response = await fetch(`${gatewayUrl}/v1/payment_intents`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      amount: 1000,
      currency: 'eur',
      payment_method: 'pm_card_visa',
      capture_method: 'manual',
    }),
  });
  return { status: response.status, body: await response.json() };
}

const portOf = (url: string): number => Number(new URL(url).port);

/** The built API as `npm start` runs it, with no GATEWAY_URL (the global setup's is dropped). */
const apiEnv = (gatewayPort: number): Record<string, string | undefined> => ({
  DATABASE_URL: testDatabaseUrl(),
  REDIS_URL: testRedisUrl(),
  ADMIN_TOKEN: TEST_ADMIN_TOKEN,
  LOG_LEVEL: 'warn',
  MIGRATIONS_RUN: 'false',
  GATEWAY_URL: undefined,
  // Beside the global simulator (same settings), away from the tests' simulators on the test database.
  GATEWAY_DATABASE_URL: globalGatewayDatabaseUrl(),
  GATEWAY_PORT: String(gatewayPort),
});

describe('the gateway simulator of the e2e run (global setup)', () => {
  it('is a separate process, started by Jest before its workers, at process.env.GATEWAY_URL', async () => {
    const url = process.env.GATEWAY_URL;
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);

    const health = await fetch(`${url}/health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok' });

    const pid = listenerPid(portOf(url!));
    expect(pid).toBeDefined();
    expect(pid).not.toBe(process.pid);
    expect(commandLine(pid!).join(' ')).toContain('gateway-sim/src/main.js');
    // Its parent is Jest's main process: this one when in band, else this worker's parent.
    expect([process.pid, process.ppid]).toContain(parentPid(pid!));
  });

  it('takes payment intents', async () => {
    const { status, body } = await createIntent(process.env.GATEWAY_URL!);

    expect(status).toBe(200);
    expect(body).toMatchObject({ amount: 1000, status: 'requires_capture' });
  });
});

describe('GatewayProcess (test support)', () => {
  let gateway: GatewayProcess | undefined;

  afterEach(async () => {
    await gateway?.stop();
    gateway = undefined;
  });

  it('kills and restarts a simulator on the same port', async () => {
    gateway = await GatewayProcess.start({
      env: { GATEWAY_DATABASE_URL: globalGatewayDatabaseUrl() },
    });
    const { url, pid } = gateway;
    expect(listenerPid(portOf(url))).toBe(pid);

    await gateway.kill('SIGKILL');
    expect(gateway.running).toBe(false);
    expect(await portAnswers(portOf(url))).toBe(false);

    await gateway.restart();
    expect(gateway.url).toBe(url);
    expect(gateway.pid).not.toBe(pid);
    expect((await fetch(`${url}/health`)).status).toBe(200);

    await gateway.stop();
    expect(await portAnswers(portOf(url))).toBe(false);
  });

  it('fails with the child’s own message when the simulator exits during start', async () => {
    await expect(GatewayProcess.start({ env: { GATEWAY_SLOW_MS: 'soon' } })).rejects.toThrow(
      /exited \(code 1\) before it answered:[\s\S]*GATEWAY_SLOW_MS="soon"/,
    );
  });

  it('says to build when the simulator is not built', async () => {
    await expect(
      PaymentGatewayProcess.start({ port: await freePort(), entry: '/nowhere/main.js' }),
    ).rejects.toThrow(/\/nowhere\/main\.js is missing\): run npm run build/);
  });
});

describe('the built API (npm start) without GATEWAY_URL', () => {
  it('starts a simulator child, sends it webhooks’ settings, and stops it on SIGTERM', async () => {
    const gatewayPort = await freePort();
    const gatewayUrl = `http://127.0.0.1:${gatewayPort}`;
    const api = await BuiltApp.start(apiEnv(gatewayPort));
    try {
      expect((await fetch(`${gatewayUrl}/health`)).status).toBe(200);
      const intent = await createIntent(gatewayUrl);
      expect(intent.status).toBe(200);
      expect(intent.body).toMatchObject({
        status: 'requires_capture',
        payment_method: 'pm_card_visa',
      });

      // A child of the API, not the API itself, and the one its log names.
      const apiPid = listenerPid(portOf(api.url))!;
      const gatewayPid = listenerPid(gatewayPort)!;
      expect(gatewayPid).not.toBe(apiPid);
      expect(parentPid(gatewayPid)).toBe(apiPid);
      expect(api.output).toContain(`Local gateway simulator (pid ${gatewayPid}) on ${gatewayUrl}`);
      // Its own output comes through, prefixed; its webhooks go to this API.
      expect(api.output).toContain(
        `[gateway] Seatlock gateway simulator on ${gatewayUrl}, webhooks to ${api.url}/payments/webhook`,
      );
    } finally {
      await api.stop();
    }
    // The API awaits the simulator's exit while it closes: nothing left once the API is gone.
    expect(await portAnswers(gatewayPort)).toBe(false);
  });

  it('takes its simulator down even when the API is SIGKILLed', async () => {
    const gatewayPort = await freePort();
    const api = await BuiltApp.start(apiEnv(gatewayPort));
    const apiPid = listenerPid(portOf(api.url))!;
    const gatewayPid = listenerPid(gatewayPort)!;
    expect(parentPid(gatewayPid)).toBe(apiPid);

    process.kill(apiPid, 'SIGKILL');
    await api.stop();

    await waitUntilClosed(gatewayPort, 10_000);
  });

  it('refuses to start, naming GATEWAY_PORT and GATEWAY_URL, when the simulator’s port is taken', async () => {
    const squatter = createServer();
    await new Promise<void>((done) => squatter.listen(0, '127.0.0.1', done));
    const port = (squatter.address() as { port: number }).port;
    try {
      const { code, output } = await runToExit({
        ...apiEnv(port),
        PORT: String(await freePort()),
        HOST: '127.0.0.1',
      });

      expect(code).toBe(1);
      expect(output).toContain(`GATEWAY_PORT ${port} on 127.0.0.1 is already in use`);
      expect(output).toContain(`set GATEWAY_URL=http://127.0.0.1:${port}`);
    } finally {
      await new Promise((done) => squatter.close(done));
    }
  });

  it('stops its simulator when the API itself then fails to start (its own port is taken)', async () => {
    const squatter = createServer();
    await new Promise<void>((done) => squatter.listen(0, '127.0.0.1', done));
    const apiPort = (squatter.address() as { port: number }).port;
    const gatewayPort = await freePort();
    try {
      const { code, output } = await runToExit({
        ...apiEnv(gatewayPort),
        PORT: String(apiPort),
        HOST: '127.0.0.1',
      });

      expect(code).toBe(1);
      expect(output).toContain(`Local gateway simulator (pid `);
      expect(output).toContain('EADDRINUSE');
      await waitUntilClosed(gatewayPort, 10_000);
    } finally {
      await new Promise((done) => squatter.close(done));
    }
  });

  it('starts no simulator when GATEWAY_URL is set', async () => {
    const api = await BuiltApp.start({ ...apiEnv(0), GATEWAY_URL: process.env.GATEWAY_URL });
    try {
      const apiPid = listenerPid(portOf(api.url))!;
      expect(childrenOf(apiPid)).toEqual([]);
      expect(api.output).not.toContain('gateway simulator');
    } finally {
      await api.stop();
    }
  });
});
