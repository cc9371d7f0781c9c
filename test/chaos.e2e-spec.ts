import { spawn } from 'node:child_process';
import { resolve } from 'node:path';

/**
 * The short chaos run (`tsx test/chaos/chaos.ts --quick --json`) as CI runs it: its own
 * PostgreSQL cluster, 3 redis-server nodes, the built gateway simulator and 3 built API instances
 * behind a round-robin proxy, faults on a schedule (a Redis node killed and restarted empty,
 * FLUSHALL, an API instance SIGKILLed and restarted, PostgreSQL restarted, an instance SIGSTOPped
 * past the hold TTL, the gateway stopped and slow), then every check. It needs the build
 * (`npm test` builds first) and touches nothing of the shared PostgreSQL or Redis.
 */
const CHAOS = resolve(__dirname, 'chaos', 'chaos.ts');
const LIMIT_MS = 175_000;

function runChaos(): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CHAOS, '--quick', '--json'], {
      cwd: resolve(__dirname, '..'),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    // SIGINT lets the script stop its children and its PostgreSQL before it exits.
    const timer = setTimeout(() => child.kill('SIGINT'), LIMIT_MS);
    child.once('error', fail);
    child.once('exit', (code) => {
      clearTimeout(timer);
      done({ code, stdout, stderr });
    });
  });
}

describe('chaos run (--quick)', () => {
  it('survives every fault with 0 violations: exit 0, PASS, and a clean JSON report', async () => {
    const { code, stdout, stderr } = await runChaos();
    const explain = `exit ${code}\n--- stdout\n${stdout.slice(-6000)}\n--- stderr\n${stderr.slice(-3000)}`;
    expect({ code, explain }).toEqual({ code: 0, explain });
    expect(stdout).toContain('chaos: PASS (0 violations)');
    const report = JSON.parse(stdout.trim().split('\n').pop() as string);
    expect(report).toMatchObject({ chaos: 'quick', ok: true, violations: [] });
    expect(report.ledger.violations).toEqual([]);
    expect(report.requests.unexcused500).toBe(0);
    expect(report.faults.map((fault: { kind: string }) => fault.kind)).toEqual(
      expect.arrayContaining(['redis-kill', 'flushall', 'api-sigkill', 'pg-restart']),
    );
    // The load really ran: holds, confirmations and webhooks.
    expect(report.bookings.confirmed).toBeGreaterThan(0);
    expect(report.webhooks.received).toBeGreaterThan(0);
  }, 180_000);
});
