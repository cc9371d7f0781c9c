import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { freePort } from './redis-server';

export const BUILT_MAIN = resolve(__dirname, '../../dist/apps/api/apps/api/src/main.js');

/**
 * The built API (`npm run build` output) as its own process, the way `npm start` runs it. `npm test`
 * builds first (pretest), so this is the code that ships.
 */
export class BuiltApp {
  output = '';

  private constructor(
    private readonly child: ChildProcess,
    readonly url: string,
  ) {
    child.stdout?.on('data', (chunk: Buffer) => (this.output += chunk.toString()));
    child.stderr?.on('data', (chunk: Buffer) => (this.output += chunk.toString()));
  }

  /** `port`: a fixed one (e.g. the one a gateway already sends webhooks to), else a free one. */
  static async start(env: Record<string, string | undefined>, port?: number): Promise<BuiltApp> {
    if (!existsSync(BUILT_MAIN)) throw new Error(`${BUILT_MAIN} is missing: run npm run build`);
    port ??= await freePort();
    const child = spawn(process.execPath, [BUILT_MAIN], {
      env: { ...process.env, ...env, PORT: String(port), HOST: '127.0.0.1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const app = new BuiltApp(child, `http://127.0.0.1:${port}`);
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`API exited early:\n${app.output}`);
      try {
        if ((await fetch(`${app.url}/health/live`)).ok) return app;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) {
        await app.stop();
        throw new Error(`API did not start in 30 s:\n${app.output}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** A crash: SIGKILL, no shutdown hooks; waits until the process is gone. */
  async kill(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    await new Promise<void>((done) => {
      this.child.once('exit', () => done());
      this.child.kill('SIGKILL');
    });
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    await new Promise<void>((done) => {
      const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
      this.child.once('exit', () => {
        clearTimeout(timer);
        done();
      });
      this.child.kill('SIGTERM');
    });
  }
}

/** Runs the built API with `env` and waits for it to exit; answers its exit code and output. */
export function runToExit(
  env: Record<string, string | undefined>,
  timeoutMs = 20_000,
): Promise<{ code: number | null; output: string }> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [BUILT_MAIN], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      fail(new Error(`API did not exit within ${timeoutMs} ms:\n${output}`));
    }, timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      done({ code, output });
    });
  });
}
