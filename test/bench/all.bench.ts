/*
 * The benchmark suite: every benchmark in one process tree, one table, each figure beside a
 * ceiling measured in the same run — the physical limit of the work (pgbench of the minimal SQL,
 * the server's own /health/live, raw Redis), with our own SQL replayed beside it for comparison.
 *
 *   npm run bench -- [--json] [--quick] [--duration S] [--connections N] [--skip LIST] ...
 *
 * Its own redis-server on a free port; only databases named seatlock_bench_all*. Parts in order:
 * stampede, http (holds, 409 path, /health/live, seat map, statements per hold), flow, notify,
 * lock. A missed goal does not change the exit code; a failed part or a wrong answer does.
 * What each figure means: docs/benchmarks.md.
 */
import { mkdirSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { API_MAIN, type Child, ChildProcesses } from '../support/bench/child-processes';
import { benchDatabaseName, databaseUrl, recreateDatabase } from '../support/bench/bench-postgres';
import {
  BenchError,
  listOption,
  logger,
  numberOption,
  parseBenchArgs,
  runBenchmarkMain,
  withTimeout,
} from '../support/bench/cli';
import { summarizeProfile, type ProfileSummary } from '../support/bench/cpu-profile';
import { commandLine, CpuSampler, descendantPids, memoryStatus } from '../support/bench/proc-stats';
import { round } from '../support/bench/stats';
import { printJson } from '../support/bench/table';
import { RedisServer } from '../support/redis-server';
import {
  holdCeilings,
  type HttpOptions,
  type HttpState,
  measureWindow,
  prepareState,
  PROFILE_SECONDS,
  startApi,
  warmUp,
  WINDOWS,
  type WindowName,
  wireCostPerHold,
} from './holds-windows';
import { buildReport, type HttpPart, printReport, type SuiteResult } from './all-report';

const PARTS = ['stampede', 'http', 'flow', 'notify', 'lock'] as const;
type Part = (typeof PARTS)[number];
/** With BENCH_DATABASE_PREFIX set, parallel suites (one per worktree) use databases apart. */
const PREFIX = benchDatabaseName('seatlock_bench_all');
const BUSY_CORES = 0.25;

const USAGE = `Usage: npm run bench -- [options]
  --json             also print one JSON object as the last line of stdout
  --duration S       measured seconds of each HTTP window and pgbench run (default 10)
  --warmup S         warm-up seconds before each HTTP window (default 2)
  --connections N    connections of the HTTP windows (default 64)
  --flow-duration S  the flow benchmark's measured window (default 15)
  --quick            smoke test: 3 s windows, short child runs (rough figures)
  --wait-quiet M     first wait up to M minutes until other processes use <= ${BUSY_CORES} cores
  --skip LIST        parts to leave out: ${PARTS.join(',')}
  --no-profile       no CPU profile of a missed holds or 409 goal
  --profile LIST     also profile these HTTP windows: ${WINDOWS.join(',')}
  --profile-dir DIR  where .cpuprofile files go (default: a temporary directory)`;

const log = logger('all');
const children = new ChildProcesses(log);

function options() {
  const v = parseBenchArgs(
    {
      json: { type: 'boolean' },
      quick: { type: 'boolean' },
      duration: { type: 'string' },
      warmup: { type: 'string' },
      connections: { type: 'string' },
      'flow-duration': { type: 'string' },
      'wait-quiet': { type: 'string' },
      skip: { type: 'string' },
      'no-profile': { type: 'boolean' },
      profile: { type: 'string' },
      'profile-dir': { type: 'string' },
    },
    USAGE,
  );
  const quick = v.quick ?? false;
  return {
    json: v.json ?? false,
    quick,
    duration: numberOption('duration', v.duration, quick ? 3 : 10, 1, 600),
    warmup: numberOption('warmup', v.warmup, quick ? 1 : 2, 0, 60),
    connections: Math.round(numberOption('connections', v.connections, 64, 1, 500)),
    flowDuration: numberOption('flow-duration', v['flow-duration'], quick ? 4 : 15, 1, 600),
    waitQuiet: numberOption('wait-quiet', v['wait-quiet'], 0, 0, 240),
    skip: new Set<Part>(listOption('skip', v.skip, PARTS)),
    autoProfile: !v['no-profile'],
    profileAlso: listOption('profile', v.profile, WINDOWS),
    profileDir: v['profile-dir'] ? resolve(v['profile-dir']) : null,
  };
}
export type SuiteOptions = ReturnType<typeof options>;

/** Splits CPU between this process tree, PostgreSQL, Redis and (unnamed) everything else. */
function sampler(): CpuSampler {
  let ours = new Set<number>();
  return new CpuSampler(
    (proc) =>
      proc.pid === process.pid || ours.has(proc.pid)
        ? proc.comm === 'redis-server'
          ? 'redis'
          : 'bench tree'
        : proc.comm === 'postgres'
          ? 'postgres'
          : null,
    async () => {
      ours = descendantPids();
    },
  );
}

async function otherCores(seconds: number): Promise<number | null> {
  const quiet = new CpuSampler(() => null);
  await quiet.start();
  await sleep(seconds * 1000);
  return (await quiet.stop()).otherCores;
}

/** Before the suite: how busy the machine is, waiting up to `minutes` for it to calm down. */
async function quietCheck(minutes: number): Promise<number | null> {
  let cores = await otherCores(5);
  for (let waited = 0; waited < minutes && cores !== null && cores > BUSY_CORES; waited += 1) {
    log(`other processes use ${cores} cores; waiting a minute`);
    await sleep(55_000);
    cores = await otherCores(5);
  }
  return cores;
}

/** The peak resident memory (VmHWM) of every API process below the suite, by part. */
class RssWatcher {
  part = 'start';
  readonly peakMB: Record<string, number> = {};
  private readonly timer = setInterval(() => this.poll(), 250).unref();

  private poll(): void {
    for (const pid of descendantPids()) {
      if (!commandLine(pid)?.includes(API_MAIN)) continue;
      const peak = memoryStatus(pid)?.peak;
      // MiB (what /proc reports) to MB, the goal's unit.
      if (peak)
        this.peakMB[this.part] = Math.max(
          this.peakMB[this.part] ?? 0,
          round(peak * 1.048576, 1) ?? 0,
        );
    }
  }

  stop(): void {
    this.poll();
    clearInterval(this.timer);
  }
}

/** Runs a child benchmark with --json and answers its last JSON line (null if it printed none). */
async function runChild(part: Exclude<Part, 'http'>, args: string[], redisUrl: string) {
  const file = join(__dirname, `${part}.bench.ts`);
  log(`${part}: ${['tsx', `test/bench/${part}.bench.ts`, '--json', ...args].join(' ')}`);
  const started = performance.now();
  const env = { ...process.env, BENCH_DATABASE_PREFIX: PREFIX, REDIS_URL: redisUrl };
  const proc = children.command(
    part,
    [process.execPath, '--import', 'tsx', file, '--json', ...args],
    env,
  );
  proc.child.stderr?.on('data', (chunk: Buffer) => process.stderr.write(chunk));
  const { code } = await proc.exited;
  const last = proc.output
    .trim()
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .pop();
  let report: { ok?: boolean; summary?: unknown; error?: string } | null;
  try {
    report = last ? JSON.parse(last) : null;
  } catch {
    report = null;
  }
  return { code, seconds: round((performance.now() - started) / 1000, 1), report };
}

function childArgs(part: Exclude<Part, 'http'>, o: SuiteOptions): string[] {
  const quick = o.quick;
  switch (part) {
    case 'stampede':
      return ['--contenders', quick ? '300' : '1000'];
    case 'flow':
      return [
        '--customers',
        '64',
        '--duration',
        String(o.flowDuration),
        ...(quick ? ['--warmup', '1'] : []),
      ];
    case 'notify':
      return quick ? ['--messages', '2000'] : [];
    case 'lock':
      return quick ? ['--duration', '2', '--warmup', '1', '--rounds', '1'] : [];
  }
}

async function httpPart(o: SuiteOptions, http: HttpOptions): Promise<HttpPart> {
  log(`http: fresh database ${PREFIX}_http`);
  await recreateDatabase(`${PREFIX}_http`);
  let api: Child | null = await startApi(children, http, 'API');
  try {
    const state = await prepareState(api, http);
    const wire = await wireCostPerHold(children, http);
    const before = api.snapshot();
    const windows: HttpPart['windows'] = {};
    for (const name of WINDOWS) windows[name] = await measureWindow(name, api, state, http);
    const logged = api.logSince(before);
    await children.stop(api);
    api = null;
    const ceilings = await holdCeilings(children, http);
    return { windows, wire, ceilings, apiLog: logged, state };
  } catch (error) {
    if (api) log(`last API output:\n${api.tail.join('\n')}`);
    throw error;
  } finally {
    if (api) await children.stop(api);
  }
}

/** One window again under `node --cpu-prof`; the profile's samples inside the window count. */
async function profileWindow(name: WindowName, state: HttpState, http: HttpOptions, dir: string) {
  const runDir = mkdtempSync(join(dir, `${name}-`));
  const api = await startApi(children, http, `API (profiled, ${name})`, { profileDir: runDir });
  try {
    await warmUp(api, state);
    const run = await measureWindow(name, api, state, http, PROFILE_SECONDS);
    api.child.kill('SIGUSR2');
    await withTimeout(api.exited, 30_000, 'the profiled API writing its profile');
    const file = readdirSync(runDir).find((entry) => entry.endsWith('.cpuprofile'));
    if (!file) throw new BenchError(`no .cpuprofile in ${runDir}`);
    return {
      perSecondProfiled: run.perSecond,
      ...summarizeProfile(join(runDir, file), run.window),
    };
  } finally {
    await children.stop(api);
  }
}

async function main(): Promise<number> {
  const o = options();
  const redis = await RedisServer.start();
  const rss = new RssWatcher();
  const result: SuiteResult = {
    options: o,
    parts: {},
    profiles: {},
    rss: rss.peakMB,
    otherCoresBefore: null,
  };
  try {
    result.otherCoresBefore = await quietCheck(o.waitQuiet);
    const whole = sampler();
    await whole.start();
    const http: HttpOptions = {
      connections: o.connections,
      seconds: o.duration,
      warmupSeconds: o.warmup,
      redisUrl: redis.url,
      databaseUrl: databaseUrl(`${PREFIX}_http`),
      adminToken: `bench-admin-${process.pid}-${Date.now()}-0123456789`,
      sampler,
    };
    for (const part of PARTS) {
      if (o.skip.has(part)) continue;
      rss.part = part;
      if (part === 'http') result.http = await httpPart(o, http);
      else result.parts[part] = await runChild(part, childArgs(part, o), redis.url);
    }
    result.cpu = await whole.stop();
    const report = buildReport(result);
    const toProfile = new Set<WindowName>(o.profileAlso);
    if (o.autoProfile) for (const name of report.missedWindows) toProfile.add(name);
    if (result.http && toProfile.size > 0) {
      rss.part = 'profile';
      const dir = o.profileDir ?? mkdtempSync(join(tmpdir(), 'seatlock-bench-profiles-'));
      mkdirSync(dir, { recursive: true });
      for (const name of toProfile) {
        log(`profile: ${name}`);
        result.profiles[name] = await profileWindow(name, result.http.state, http, dir).catch(
          (error: Error): ProfileSummary | { error: string } => ({ error: error.message }),
        );
      }
    }
    rss.stop();
    const final = buildReport(result);
    printReport(final, result);
    if (o.json) printJson(final.json);
    return final.json.ok ? 0 : 1;
  } finally {
    rss.stop();
    await redis.stop();
  }
}

runBenchmarkMain({ benchmark: 'all', main, children, totalMs: 90 * 60_000 });
