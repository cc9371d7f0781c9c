/*
 * The benchmark suite: every benchmark in one process tree, one table, each figure beside a
 * ceiling measured in the same run (pgbench of the minimal SQL, /health/live, raw Redis), our own
 * SQL replayed beside it. Its own redis-server; only databases named seatlock_bench_all*. A missed
 * goal does not change the exit code; a failed part or a wrong answer does. See docs/benchmarks.md.
 */
import { mkdirSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { benchDatabaseName, databaseUrl, recreateDatabase } from '../support/bench/bench-postgres';
import { BenchRun } from '../support/bench/bench-run';
import { API_MAIN } from '../support/bench/child-processes';
import * as cli from '../support/bench/cli';
import { summarizeProfile, type ProfileSummary } from '../support/bench/cpu-profile';
import { commandLine, CpuSampler, descendantPids, memoryStatus } from '../support/bench/proc-stats';
import { round } from '../support/bench/stats';
import { buildReport, type HttpPart, printSuiteReport, type SuiteResult } from './all-report';
import * as holds from './holds-windows';

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
  --profile LIST     also profile these HTTP windows: ${holds.WINDOWS.join(',')}
  --profile-dir DIR  where .cpuprofile files go (default: a temporary directory)`;

const run = new BenchRun('all', 15_000);
const { log, children } = run;

function options() {
  const [text, flag] = [{ type: 'string' }, { type: 'boolean' }] as const;
  const v = cli.parseBenchArgs(
    {
      ...{ json: flag, quick: flag, duration: text, warmup: text, connections: text },
      ...{ 'flow-duration': text, 'wait-quiet': text, skip: text, 'no-profile': flag },
      ...{ profile: text, 'profile-dir': text },
    },
    USAGE,
  );
  const quick = v.quick ?? false;
  return {
    json: v.json ?? false,
    quick,
    duration: cli.numberOption('duration', v.duration, quick ? 3 : 10, 1, 600),
    warmup: cli.numberOption('warmup', v.warmup, quick ? 1 : 2, 0, 60),
    connections: Math.round(cli.numberOption('connections', v.connections, 64, 1, 500)),
    flowDuration: cli.numberOption('flow-duration', v['flow-duration'], quick ? 4 : 15, 1, 600),
    waitQuiet: cli.numberOption('wait-quiet', v['wait-quiet'], 0, 0, 240),
    skip: new Set<Part>(cli.listOption('skip', v.skip, PARTS)),
    autoProfile: !v['no-profile'],
    profileAlso: cli.listOption('profile', v.profile, holds.WINDOWS),
    profileDir: v['profile-dir'] ? resolve(v['profile-dir']) : null,
  };
}
type SuiteOptions = ReturnType<typeof options>;

/** Splits CPU between this process tree, PostgreSQL, Redis and (unnamed) everything else. */
function sampler(): CpuSampler {
  let ours = new Set<number>();
  const group = (pid: number, comm: string) => {
    if (pid === process.pid || ours.has(pid))
      return comm === 'redis-server' ? 'redis' : 'bench tree';
    return comm === 'postgres' ? 'postgres' : null;
  };
  return new CpuSampler(
    (proc) => group(proc.pid, proc.comm),
    async () => {
      ours = descendantPids();
    },
  );
}

/** Before the suite: how busy the machine is, waiting up to `minutes` for it to calm down. */
async function quietCheck(minutes: number): Promise<number | null> {
  const otherCores = async () => {
    const quiet = new CpuSampler(() => null);
    await quiet.start();
    await sleep(5_000);
    return (await quiet.stop()).otherCores;
  };
  let cores = await otherCores();
  for (let waited = 0; waited < minutes && cores !== null && cores > BUSY_CORES; waited += 1) {
    log(`other processes use ${cores} cores; waiting a minute`);
    await sleep(55_000);
    cores = await otherCores();
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
      const peak = commandLine(pid)?.includes(API_MAIN) ? memoryStatus(pid)?.peak : null;
      // MiB (what /proc reports) to MB, the goal's unit.
      const mb = round((peak ?? 0) * 1.048576, 1) ?? 0;
      if (peak) this.peakMB[this.part] = Math.max(this.peakMB[this.part] ?? 0, mb);
    }
  }

  stop(): void {
    this.poll();
    clearInterval(this.timer);
  }
}

/** Runs a child benchmark with --json and answers its last JSON line (null if it printed none). */
async function runChild(part: Exclude<Part, 'http'>, args: string[], redisUrl: string) {
  log(`${part}: ${['tsx', `test/bench/${part}.bench.ts`, '--json', ...args].join(' ')}`);
  const started = performance.now();
  const env = { ...process.env, BENCH_DATABASE_PREFIX: PREFIX, REDIS_URL: redisUrl };
  const file = join(__dirname, `${part}.bench.ts`);
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
  let report: { ok?: boolean; summary?: unknown; error?: string } | null = null;
  try {
    report = last ? JSON.parse(last) : null;
  } catch {
    // no report
  }
  return { code, seconds: round((performance.now() - started) / 1000, 1), report };
}

function childArgs(part: Exclude<Part, 'http'>, o: SuiteOptions): string[] {
  const flow = ['--customers', '64', '--duration', String(o.flowDuration)];
  const args = {
    stampede: ['--contenders', o.quick ? '300' : '1000'],
    flow: [...flow, ...(o.quick ? ['--warmup', '1'] : [])],
    notify: o.quick ? ['--messages', '2000'] : [],
    lock: o.quick ? ['--duration', '2', '--warmup', '1', '--rounds', '1'] : [],
  };
  return args[part];
}

async function httpPart(http: holds.HttpOptions): Promise<HttpPart> {
  log(`http: fresh database ${PREFIX}_http`);
  await recreateDatabase(`${PREFIX}_http`);
  const api = await holds.startApi(run, http, 'API');
  try {
    const state = await holds.prepareState(api, http);
    const wire = await holds.wireCostPerHold(run, http);
    const before = api.snapshot();
    const windows: HttpPart['windows'] = {};
    for (const name of holds.WINDOWS) {
      windows[name] = await holds.measureWindow(name, api, state, http);
    }
    const apiLog = api.logSince(before);
    await children.stop(api);
    return { windows, wire, ceilings: await holds.holdCeilings(run, http), apiLog, state };
  } catch (error) {
    if (!api.hasExited) log(`last API output:\n${api.tail.join('\n')}`);
    throw error;
  } finally {
    await children.stop(api);
  }
}

/** One window again under `node --cpu-prof`; the profile's samples inside the window count. */
async function profileWindow(
  name: holds.WindowName,
  state: holds.HttpState,
  http: holds.HttpOptions,
  dir: string,
) {
  const profileDir = mkdtempSync(join(dir, `${name}-`));
  const api = await holds.startApi(run, http, `API (profiled, ${name})`, { profileDir });
  try {
    await holds.warmUp(api, state);
    const measured = await holds.measureWindow(name, api, state, http, holds.PROFILE_SECONDS);
    api.child.kill('SIGUSR2');
    await cli.withTimeout(api.exited, 30_000, 'the profiled API writing its profile');
    const file = readdirSync(profileDir).find((entry) => entry.endsWith('.cpuprofile'));
    if (!file) throw new cli.BenchError(`no .cpuprofile in ${profileDir}`);
    const summary = summarizeProfile(join(profileDir, file), measured.window);
    return { perSecondProfiled: measured.perSecond, ...summary };
  } finally {
    await children.stop(api);
  }
}

async function main(): Promise<number> {
  const o = options();
  const redis = await run.privateRedis();
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
    const http: holds.HttpOptions = {
      ...{ connections: o.connections, seconds: o.duration, warmupSeconds: o.warmup },
      ...{ redisUrl: redis.url, databaseUrl: databaseUrl(`${PREFIX}_http`) },
      ...{ adminToken: run.adminToken, sampler },
    };
    for (const part of PARTS.filter((p) => !o.skip.has(p))) {
      rss.part = part;
      if (part === 'http') result.http = await httpPart(http);
      else result.parts[part] = await runChild(part, childArgs(part, o), redis.url);
    }
    result.cpu = await whole.stop();
    const toProfile = new Set<holds.WindowName>(o.profileAlso);
    if (o.autoProfile) for (const name of buildReport(result).missedWindows) toProfile.add(name);
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
    printSuiteReport(final, result, o.json);
    return final.json.ok ? 0 : 1;
  } finally {
    rss.stop();
  }
}

run.main(main, 90 * 60_000);
