import { execFile, spawnSync } from 'node:child_process';
import { chownSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { Client } from 'pg';
import { freePort } from './redis-server';

const PG_BIN = '/usr/lib/postgresql/15/bin';
const SETTINGS = ['fsync=off', 'synchronous_commit=off', 'full_page_writes=off'];

/** initdb refuses to run as root: then the cluster belongs to the `postgres` OS user. */
function postgresOwner(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const id = (flag: string) => spawnSync('id', [flag, 'postgres'], { encoding: 'utf8' });
  const [uid, gid] = [id('-u'), id('-g')];
  if (uid.status !== 0 || gid.status !== 0) {
    throw new Error('running as root needs the `postgres` OS user for initdb');
  }
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

/**
 * A PostgreSQL 15 cluster of the caller's own, to restart or stop without touching the machine's
 * server: initdb into a temp dir (trust auth, fsync off), pg_ctl on a free loopback port. Needs
 * Debian's postgresql-15 binaries. `stop` (or `killSync`, for an exit handler) removes it all.
 */
export class PrivatePostgres {
  private readonly owner = postgresOwner();
  private readonly env = { PATH: process.env.PATH, LANG: 'C.UTF-8', LC_ALL: 'C.UTF-8' };
  private readonly data: string;
  private options = '';

  private constructor(
    private readonly dir: string,
    readonly port: number,
  ) {
    this.data = join(dir, 'data');
  }

  /** `settings` are `name=value` server settings over the defaults (e.g. max_connections=200). */
  static async start(settings: string[] = []): Promise<PrivatePostgres> {
    const pg = new PrivatePostgres(mkdtempSync(join(tmpdir(), 'seatlock-pg-')), await freePort());
    if (pg.owner) chownSync(pg.dir, pg.owner.uid, pg.owner.gid);
    try {
      const initdb = ['-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync'];
      await pg.run('initdb', ['-D', pg.data, ...initdb, '--no-instructions'], 60_000);
      const all = [`listen_addresses=127.0.0.1`, ...SETTINGS, ...settings];
      pg.options = [`-p ${pg.port} -k ${pg.dir}`, ...all.map((s) => `-c ${s}`)].join(' ');
      await pg.run('pg_ctl', [...pg.ctl('-t', '60', '-o', pg.options), 'start'], 70_000);
    } catch (error) {
      pg.killSync();
      throw error;
    }
    return pg;
  }

  url(database: string): string {
    return `postgres://postgres@127.0.0.1:${this.port}/${database}`;
  }

  /** `pg_ctl restart -m fast`: every session is cut, then it accepts connections again. */
  async restart(): Promise<void> {
    const args = this.ctl('-t', '60', '-m', 'fast', '-o', this.options);
    await this.run('pg_ctl', [...args, 'restart'], 70_000);
  }

  /** Until `SELECT 1` succeeds on `database`. */
  async waitReady(database = 'postgres', timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const client = new Client({ connectionString: this.url(database) });
      client.on('error', () => undefined);
      try {
        await client.connect();
        await client.query('SELECT 1');
        return;
      } catch (error) {
        if (Date.now() > deadline)
          throw new Error(`PostgreSQL not ready: ${error}`, { cause: error });
        await sleep(100);
      } finally {
        await client.end().catch(() => undefined);
      }
    }
  }

  async stop(): Promise<void> {
    await this.run('pg_ctl', [...this.ctl('-t', '20', '-m', 'fast'), 'stop'], 25_000).catch(() =>
      this.killSync(),
    );
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** For an exit handler: nothing asynchronous runs there. */
  killSync(): void {
    const args = [...this.ctl('-t', '10', '-m', 'immediate'), 'stop'];
    const options = { ...this.owner, env: this.env, stdio: 'ignore', timeout: 15_000 } as const;
    spawnSync(join(PG_BIN, 'pg_ctl'), args, options);
    rmSync(this.dir, { recursive: true, force: true });
  }

  private ctl(...more: string[]): string[] {
    return ['-D', this.data, '-l', join(this.dir, 'postgres.log'), '-w', ...more];
  }

  private async run(program: string, args: string[], timeout: number): Promise<void> {
    const options = { ...this.owner, env: this.env, timeout, maxBuffer: 4 << 20 };
    await promisify(execFile)(join(PG_BIN, program), args, options).catch((error) => {
      const { message, stdout = '', stderr = '' } = error as Error & Record<string, string>;
      throw new Error(`${program} ${args.join(' ')} failed: ${message}\n${stdout}${stderr}`);
    });
  }
}
