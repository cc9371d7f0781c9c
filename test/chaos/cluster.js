'use strict';

/*
 * The chaos run's private world, all real processes on loopback, all started (and stopped) here:
 * a PostgreSQL cluster of its own (initdb into a temp dir, pg_ctl, a free port), redis-server nodes
 * without persistence, Node children (the built API instances and the gateway simulator), a
 * round-robin HTTP proxy that retries nothing, and a webhook receiver. Nothing here touches the
 * machine's shared PostgreSQL or Redis, and only PIDs started here are ever signalled.
 */

const { execFile, spawn, spawnSync } = require('node:child_process');
const { chownSync, mkdtempSync, readFileSync, rmSync } = require('node:fs');
const http = require('node:http');
const { connect } = require('node:net');
const os = require('node:os');
const path = require('node:path');
const readline = require('node:readline');
const { setTimeout: sleep } = require('node:timers/promises');
const { Client: PgClient } = require('pg');
const { BenchError, freePort, withTimeout } = require('../bench/bench-support');

const PG_BIN = '/usr/lib/postgresql/15/bin';

/** Everything to stop on exit, newest last; `cleanupSync` works even from process.on('exit'). */
const resources = [];
let shuttingDown = false;

function track(resource) {
  resources.push(resource);
  return resource;
}

/** Best effort, synchronous: SIGKILL our children, stop our PostgreSQL, remove our temp dirs. */
function cleanupSync() {
  shuttingDown = true;
  for (const resource of resources.splice(0).reverse()) {
    try {
      resource.killSync();
    } catch {
      // already gone
    }
  }
}

/** Stops everything gracefully where it can (bounded), then whatever is left the hard way. */
async function cleanup() {
  shuttingDown = true;
  const all = resources.slice().reverse();
  for (const resource of all) {
    try {
      await withTimeout(resource.stop(), 15_000, `stopping ${resource.name}`);
    } catch {
      // the sync pass below
    }
  }
  cleanupSync();
}

function runFile(file, args, { timeoutMs, uid, gid, env } = {}) {
  return new Promise((resolve, reject) => {
    execFile(
      file,
      args,
      { timeout: timeoutMs, uid, gid, env, maxBuffer: 4 * 1024 * 1024 },
      (error, stdout, stderr) => {
        if (error) {
          reject(
            new BenchError(
              `${path.basename(file)} ${args.join(' ')} failed: ${error.message}\n${stdout}${stderr}`,
            ),
          );
        } else resolve(stdout);
      },
    );
  });
}

/** A temp dir of ours; removed on exit. Owned by `owner` (uid/gid) when given. */
function tempDir(prefix, owner) {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  if (owner) chownSync(dir, owner.uid, owner.gid);
  track({
    name: `temp dir ${dir}`,
    stop: async () => undefined,
    killSync: () => rmSync(dir, { recursive: true, force: true }),
  });
  return dir;
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL: a private cluster

/** initdb refuses to run as root: then the cluster belongs to the `postgres` OS user. */
function postgresOwner() {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return undefined;
  const found = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
  const group = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
  if (found.status !== 0 || group.status !== 0) {
    throw new BenchError('running as root needs the `postgres` OS user for initdb');
  }
  return { uid: Number(found.stdout.trim()), gid: Number(group.stdout.trim()) };
}

async function startPostgres() {
  const pgCtl = path.join(PG_BIN, 'pg_ctl');
  const owner = postgresOwner();
  const dir = tempDir('seatlock-chaos-pg-', owner);
  const dataDir = path.join(dir, 'data');
  const logFile = path.join(dir, 'postgres.log');
  const port = await freePort();
  const env = { PATH: process.env.PATH, LANG: 'C.UTF-8', LC_ALL: 'C.UTF-8' };
  const as = { uid: owner?.uid, gid: owner?.gid, env };
  await runFile(
    path.join(PG_BIN, 'initdb'),
    [
      '-D',
      dataDir,
      '-U',
      'postgres',
      '--auth=trust',
      '-E',
      'UTF8',
      '--no-sync',
      '--no-instructions',
    ],
    { ...as, timeoutMs: 60_000 },
  );
  const options = [
    `-p ${port}`,
    `-k ${dir}`,
    '-c listen_addresses=127.0.0.1',
    '-c fsync=off',
    '-c synchronous_commit=off',
    '-c full_page_writes=off',
    '-c max_connections=200',
    '-c shared_buffers=64MB',
  ].join(' ');
  const pgCtlArgs = (...more) => ['-D', dataDir, '-l', logFile, '-o', options, '-w', ...more];
  const pg = {
    name: `PostgreSQL on ${port}`,
    port,
    dir,
    logFile,
    url: (database) => `postgres://postgres@127.0.0.1:${port}/${database}`,
    /** The postmaster's PID (first line of postmaster.pid), for the record. */
    pid: () => {
      try {
        return Number(readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
      } catch {
        return null;
      }
    },
    start: () => runFile(pgCtl, pgCtlArgs('-t', '60', 'start'), { ...as, timeoutMs: 70_000 }),
    /** `pg_ctl restart -m fast`: every session is cut, then it accepts connections again. */
    restart: () =>
      runFile(pgCtl, pgCtlArgs('-t', '60', '-m', 'fast', 'restart'), { ...as, timeoutMs: 70_000 }),
    stop: () =>
      runFile(pgCtl, ['-D', dataDir, '-m', 'fast', '-w', '-t', '20', 'stop'], {
        ...as,
        timeoutMs: 25_000,
      }).catch(() => undefined),
    killSync: () => {
      spawnSync(pgCtl, ['-D', dataDir, '-m', 'immediate', '-w', '-t', '10', 'stop'], {
        uid: owner?.uid,
        gid: owner?.gid,
        env,
        stdio: 'ignore',
        timeout: 15_000,
      });
    },
  };
  // Registered after the temp dir, so it is stopped before the dir is removed.
  track(pg);
  await pg.start();
  return pg;
}

async function withPg(url, work) {
  const client = new PgClient({ connectionString: url, connectionTimeoutMillis: 5_000 });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function waitPostgres(url, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await withPg(url, (client) => client.query('SELECT 1'));
      return;
    } catch (error) {
      if (Date.now() > deadline) {
        throw new BenchError(`PostgreSQL not reachable after ${timeoutMs} ms: ${error.message}`);
      }
      await sleep(100);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Redis nodes, no persistence

/** One RESP command over a fresh socket (no client library, no reconnect timers). */
function redisCommand(port, args, timeoutMs = 2_000) {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    let data = '';
    const done = (error, value) => {
      socket.destroy();
      if (error) reject(error);
      else resolve(value);
    };
    socket.setTimeout(timeoutMs, () => done(new Error(`redis :${port} timed out`)));
    socket.once('error', (error) => done(error));
    socket.once('connect', () =>
      socket.write(
        `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`,
      ),
    );
    socket.on('data', (chunk) => {
      data += chunk.toString();
      if (data.endsWith('\r\n')) done(null, data.trim());
    });
  });
}

async function startRedis(dir) {
  const port = await freePort();
  const node = {
    name: `redis-server on ${port}`,
    port,
    url: `redis://127.0.0.1:${port}`,
    child: null,
    async start() {
      const child = spawn(
        'redis-server',
        [
          ...['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
          ...['--dir', dir, '--loglevel', 'warning'],
        ],
        { stdio: 'ignore' },
      );
      node.child = child;
      node.exited = new Promise((resolve) => child.once('exit', resolve));
      const deadline = Date.now() + 10_000;
      for (;;) {
        if (child.exitCode !== null) throw new BenchError(`redis-server on ${port} exited`);
        const pong = await redisCommand(port, ['PING'], 500).catch(() => null);
        if (pong === '+PONG') return;
        if (Date.now() > deadline) throw new BenchError(`redis-server on ${port} did not start`);
        await sleep(50);
      }
    },
    alive: () => node.child && node.child.exitCode === null && node.child.signalCode === null,
    async kill() {
      if (!node.alive()) return;
      node.child.kill('SIGKILL');
      await withTimeout(node.exited, 5_000, `redis-server ${port} exiting`);
    },
    flushAll: () => redisCommand(port, ['FLUSHALL']),
    stop: () => node.kill(),
    killSync: () => {
      if (node.alive()) node.child.kill('SIGKILL');
    },
  };
  track(node);
  await node.start();
  return node;
}

// ---------------------------------------------------------------------------------------------
// Node children: the API instances and the gateway simulator

/**
 * Runs in the child before its main: once our end of its stdin closes (this process is gone,
 * however it died, SIGKILL included) it shuts down instead of squatting its port.
 */
const ORPHAN_GUARD =
  "process.stdin.on('end', () => process.kill(process.pid, 'SIGTERM')).resume();" +
  'require(process.argv[1]);';

/** A minimal environment: nothing of the caller's app settings (DATABASE_URL, LOCK_MODE, ...) leaks in. */
function baseEnv() {
  const env = {};
  for (const name of ['PATH', 'HOME', 'LANG', 'TMPDIR', 'TZ']) {
    if (process.env[name] !== undefined) env[name] = process.env[name];
  }
  return env;
}

/**
 * A restartable Node child. Keeps a tail of its output and every error-level log line with its
 * time (evidence for any 500), records every exit it did not ask for (with the output's tail) and
 * then starts it again a second later.
 */
function nodeChild(name, entry, env, t0, cwd, nodeOptions = []) {
  const proc = {
    name,
    entry,
    env,
    child: null,
    tail: [],
    errors: [],
    errorCount: 0,
    expectedExit: false,
    unexpectedExits: [],
    starts: 0,
    start() {
      const child = spawn(process.execPath, [...nodeOptions, '-e', ORPHAN_GUARD, entry], {
        cwd,
        env: { ...baseEnv(), ...proc.env },
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      proc.child = child;
      proc.starts += 1;
      proc.expectedExit = false;
      child.stdin.on('error', () => undefined);
      proc.exited = new Promise((resolve) =>
        child.once('exit', (code, signal) => {
          if (!proc.expectedExit) {
            proc.unexpectedExits.push({
              at: (Date.now() - t0()) / 1000,
              code,
              signal,
              tail: proc.tail.slice(-100),
            });
            // Like a process supervisor: a crash is recorded (a violation) and the process is
            // started again, so that the rest of the run and its checks still mean something.
            if (!shuttingDown) {
              setTimeout(() => {
                if (!shuttingDown && !proc.alive()) proc.start();
              }, 1_000).unref();
            }
          }
          resolve({ code, signal });
        }),
      );
      for (const stream of [child.stdout, child.stderr]) {
        readline.createInterface({ input: stream }).on('line', (line) => {
          proc.tail.push(line);
          if (proc.tail.length > 120) proc.tail.shift();
          let entry = null;
          try {
            entry = JSON.parse(line);
          } catch {
            // not a pino line
          }
          if (entry && entry.level >= 50) {
            proc.errorCount += 1;
            if (proc.errors.length < 200) {
              proc.errors.push({
                at: (Date.now() - t0()) / 1000,
                msg: String(entry.msg ?? '').slice(0, 200),
                err: entry.err ? String(entry.err.message ?? '').slice(0, 300) : undefined,
                status: entry.res?.statusCode,
              });
            }
          }
        });
      }
      return proc;
    },
    alive: () => proc.child && proc.child.exitCode === null && proc.child.signalCode === null,
    signal(sig) {
      if (proc.alive()) proc.child.kill(sig);
    },
    async kill() {
      if (!proc.alive()) return;
      proc.expectedExit = true;
      proc.child.kill('SIGCONT');
      proc.child.kill('SIGKILL');
      await withTimeout(proc.exited, 5_000, `${name} exiting`);
    },
    async stop() {
      if (!proc.alive()) return;
      proc.expectedExit = true;
      proc.child.kill('SIGCONT');
      proc.child.kill('SIGTERM');
      const done = await Promise.race([proc.exited, sleep(8_000).then(() => null)]);
      if (!done) await proc.kill();
    },
    killSync() {
      if (proc.alive()) {
        proc.expectedExit = true;
        proc.child.kill('SIGCONT');
        proc.child.kill('SIGKILL');
      }
    },
  };
  track(proc);
  return proc;
}

async function waitHttp(proc, url, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    if (proc && !proc.alive()) {
      throw new BenchError(`${proc.name} exited during start-up:\n${proc.tail.join('\n')}`);
    }
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(2_000) });
      await response.arrayBuffer();
      if (response.status === 200) return;
      last = String(response.status);
    } catch (error) {
      last = error.message;
    }
    if (Date.now() > deadline) {
      throw new BenchError(`${proc ? proc.name : url} not ready after ${timeoutMs} ms (${last})`);
    }
    await sleep(100);
  }
}

// ---------------------------------------------------------------------------------------------
// The load balancer: round-robin, no retries

/**
 * A plain round-robin reverse proxy. It never retries: a backend that refuses the connection or
 * drops it answers the client 502, one that does not answer within `timeoutMs` 504. Like nginx's
 * passive health check (max_fails=1 fail_timeout=2s), a backend that just refused a connection is
 * skipped for 2 s. Each answer carries `X-Chaos-Backend: <index>`.
 */
async function startProxy(backends, { timeoutMs }) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256, keepAliveMsecs: 1_000 });
  const downUntil = backends.map(() => 0);
  let next = 0;
  const counts = backends.map(() => 0);
  const pick = () => {
    const now = Date.now();
    for (let i = 0; i < backends.length; i += 1) {
      const index = (next + i) % backends.length;
      if (downUntil[index] <= now) {
        next = index + 1;
        return index;
      }
    }
    const index = next % backends.length;
    next = index + 1;
    return index;
  };
  const server = http.createServer((req, res) => {
    const index = pick();
    counts[index] += 1;
    const target = backends[index];
    let answered = false;
    const fail = (status) => {
      if (answered) return;
      answered = true;
      if (!res.headersSent) {
        res.writeHead(status, {
          'content-type': 'application/problem+json',
          'x-chaos-backend': String(index),
        });
        res.end(JSON.stringify({ status, title: 'proxy', detail: `backend ${index}` }));
      } else res.destroy();
    };
    const upstream = http.request(
      {
        host: '127.0.0.1',
        port: target.port,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, host: `127.0.0.1:${target.port}` },
        agent,
        timeout: timeoutMs,
      },
      (answer) => {
        answered = true;
        res.writeHead(answer.statusCode, { ...answer.headers, 'x-chaos-backend': String(index) });
        answer.pipe(res);
        answer.on('error', () => res.destroy());
      },
    );
    upstream.on('timeout', () => {
      upstream.destroy();
      fail(504);
    });
    upstream.on('error', (error) => {
      if (error.code === 'ECONNREFUSED') downUntil[index] = Date.now() + 2_000;
      fail(502);
    });
    res.on('close', () => {
      if (!res.writableFinished) upstream.destroy();
    });
    req.pipe(upstream);
  });
  server.keepAliveTimeout = 30_000;
  server.headersTimeout = 35_000;
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const proxy = {
    name: 'proxy',
    url: `http://127.0.0.1:${server.address().port}`,
    counts,
    stop: async () => {
      server.closeAllConnections();
      agent.destroy();
      await new Promise((resolve) => server.close(() => resolve()));
    },
    killSync: () => {
      server.closeAllConnections();
      agent.destroy();
      server.close();
    },
  };
  track(proxy);
  return proxy;
}

// ---------------------------------------------------------------------------------------------
// The webhook receiver: one endpoint per customer (/hooks/<n>), signatures checked

/**
 * `verify(secret, raw, header)` answers a problem or null (the API's own checker, from dist).
 * Answers `failShare` of the requests 503 (retries must follow), the rest 200.
 */
async function startReceiver(verify, { failShare }) {
  const secrets = new Map();
  const stats = {
    requests: 0,
    answered503: 0,
    badSignatures: 0,
    badSignatureSamples: [],
    keys: new Map(), // `${endpoint}/${key}` -> times received with 200
    byType: {},
  };
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', () => {
      stats.requests += 1;
      const raw = Buffer.concat(chunks);
      const endpoint = (/^\/hooks\/(\d+)$/.exec(req.url || '') || [])[1];
      const secret = secrets.get(endpoint);
      const header = req.headers['seatlock-signature'];
      const problem = secret
        ? verify(secret, raw, typeof header === 'string' ? header : undefined)
        : `unknown endpoint ${req.url}`;
      if (problem) {
        stats.badSignatures += 1;
        if (stats.badSignatureSamples.length < 5) stats.badSignatureSamples.push(problem);
      }
      if (Math.random() < failShare) {
        stats.answered503 += 1;
        res.writeHead(503).end();
        return;
      }
      const key = `${endpoint}/${req.headers['idempotency-key']}`;
      stats.keys.set(key, (stats.keys.get(key) || 0) + 1);
      try {
        const type = JSON.parse(raw.toString()).type;
        stats.byType[type] = (stats.byType[type] || 0) + 1;
      } catch {
        stats.byType['(unparsable)'] = (stats.byType['(unparsable)'] || 0) + 1;
      }
      res.writeHead(200).end();
    });
  });
  server.keepAliveTimeout = 30_000;
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const receiver = {
    name: 'webhook receiver',
    url: (n) => `http://127.0.0.1:${server.address().port}/hooks/${n}`,
    setSecret: (n, secret) => secrets.set(String(n), secret),
    stats,
    stop: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(() => resolve()));
    },
    killSync: () => {
      server.closeAllConnections();
      server.close();
    },
  };
  track(receiver);
  return receiver;
}

module.exports = {
  cleanup,
  cleanupSync,
  nodeChild,
  redisCommand,
  startPostgres,
  startProxy,
  startReceiver,
  startRedis,
  tempDir,
  waitHttp,
  waitPostgres,
  withPg,
};
