import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { LockBusyError, LockProvider } from '@app/lock';
import { freePort, RedisServer, waitForPing } from './support/redis-server';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(
  check: () => boolean | Promise<boolean>,
  what: string,
  tries = 250,
): Promise<void> {
  for (let i = 0; i < tries; i += 1) {
    if (await check()) return;
    await sleep(20);
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function exercise(lock: LockProvider, tag: string): Promise<void> {
  await until(() => lock.isAvailable(), 'the provider to connect');
  const keys = [`{${tag}}:A1`, `{${tag}}:A2`];
  const first = await lock.acquireMany(keys, 5_000);
  await expect(lock.acquireMany([keys[1]], 5_000)).rejects.toBeInstanceOf(LockBusyError);
  expect(await lock.release(first)).toBe(2);
  const second = await lock.acquireMany(keys, 5_000);
  expect(second.fence).toBeGreaterThan(first.fence);
  await lock.release(second);
  const job = await lock.tryAcquire(`job-${tag}`, 5_000);
  expect(job).not.toBeNull();
  await lock.release(job!);
}

describe('REDIS_URL topologies through ioredis', () => {
  it('redis-sentinel://: finds the primary through a real sentinel', async () => {
    const primary = await RedisServer.start();
    const sentinelPort = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'seatlock-sentinel-'));
    const config = join(dir, 'sentinel.conf');
    writeFileSync(
      config,
      [
        `port ${sentinelPort}`,
        'bind 127.0.0.1',
        `dir ${dir}`,
        `sentinel monitor seats 127.0.0.1 ${primary.port} 1`,
        'sentinel down-after-milliseconds seats 1000',
      ].join('\n'),
    );
    const sentinel: ChildProcess = spawn('redis-server', [config, '--sentinel'], {
      stdio: 'ignore',
    });
    const lock = new LockProvider({
      mode: 'redis',
      redisUrl: `redis-sentinel://127.0.0.1:${sentinelPort}/seats`,
    });
    try {
      await waitForPing(sentinelPort);
      await exercise(lock, 'sentinel');
      // The lock keys really are on the primary the sentinel named.
      const direct = new Redis(primary.url);
      try {
        const lease = await lock.acquireMany(['{sentinel}:B1'], 5_000);
        expect(await direct.get('lock:{sentinel}:B1')).toBe(lease.owner);
        await lock.release(lease);
      } finally {
        direct.disconnect();
      }
    } finally {
      await lock.close();
      sentinel.kill('SIGKILL');
      await primary.stop();
    }
  });

  it('redis-cluster://: works on a real 3-node cluster, every call in one slot', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'seatlock-cluster-'));
    const nodes = await Promise.all(
      [0, 1, 2].map(() =>
        RedisServer.start([
          '--cluster-enabled',
          'yes',
          '--cluster-config-file',
          join(dir, `nodes-${randomUUID()}.conf`),
        ]),
      ),
    );
    const lock = new LockProvider({
      mode: 'redis',
      redisUrl: `redis-cluster://${nodes.map((n) => `127.0.0.1:${n.port}`).join(',')}`,
    });
    try {
      const created = spawnSync(
        'redis-cli',
        ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-yes'],
        { encoding: 'utf8', timeout: 20_000 },
      );
      expect(created.status).toBe(0);
      const probe = new Redis(nodes[0].url);
      try {
        await until(
          async () => (await probe.cluster('INFO')).includes('cluster_state:ok'),
          'cluster ok',
        );
      } finally {
        probe.disconnect();
      }
      // Tags spread over the slots, so the calls land on different nodes.
      for (const tag of ['event:1', 'event:2', 'event:3', 'event:4']) await exercise(lock, tag);
    } finally {
      await lock.close();
      await Promise.all(nodes.map((n) => n.stop()));
    }
  });
});
