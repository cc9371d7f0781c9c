import { readFileSync } from 'node:fs';
import { BenchRun } from '../../support/bench/bench-run';
import * as cli from '../../support/bench/cli';

/* The flash sale's run, constants and options, and its seeded quantities. */

export const run = new BenchRun('flash');
export const SECTION = 'Floor';
export const PRICE_CENTS = 4_500;
export const DATABASE = 'seatlock_bench_flash';
export const WAVE_TIMEOUT_MS = 180_000;
/** Long enough that no hold lapses between wave 1 and the end of wave 2 (default 300 s). */
export const HOLD_TTL_SECONDS = 900;
export const LIVE_CONNECTIONS = 64;
/** Share of wave-1 losers Redis should answer alone (the stampede's goal). */
export const WITHOUT_PG_GOAL = 0.999;
export const OVERLOADED = '503 BOOKING.OVERLOADED';
export const SOLD_OUT = '409 BOOKING.SOLD_OUT';

export const SCENARIOS = ['normal', 'flush', 'stopped'] as const;
export type Scenario = (typeof SCENARIOS)[number];
export const SCENARIO_TITLES: Record<Scenario, string> = {
  normal: 'Redis up',
  flush: 'FLUSHALL mid-wave',
  stopped: 'Redis stopped (PostgreSQL alone)',
};

const USAGE = `Usage: npm run bench:flash -- [--flush-mid-wave] [--redis-stopped] [--all] [options]

  (no variant)         Redis up all along
  --flush-mid-wave     FLUSHALL on the private Redis while wave 1 is in flight
  --redis-stopped      Redis stopped before wave 1 (started again before the releases)
  --all                the three scenarios, one after the other
  --customers N        wave 1: customers asking at once (1 to 10000, default 10000)
  --capacity N         units of the GA section (1 to 50000, default 1000)
  --wave2 N            wave 2: customers without a booking asking at once (0 to 10000, default 5000)
  --seed N             seed of the quantities (default 13)
  --flush-after N      --flush-mid-wave: FLUSHALL after this many answers (default 300)
  --pgbench-seconds S  seconds of each pgbench ceiling run (default 10; three runs)
  --no-pgbench         skip the pgbench ceilings
  --live-seconds S     seconds of the /health/live ceiling window (default 5)
  --json               also print one JSON object as the last line of stdout`;

const FLAGS = ['flush-mid-wave', 'redis-stopped', 'all', 'no-pgbench', 'json'];
const NUMBERS = ['customers', 'capacity', 'wave2', 'seed', 'flush-after', 'pgbench-seconds'];

export function readOptions() {
  const spec = Object.fromEntries([
    ...FLAGS.map((name) => [name, { type: 'boolean' as const }]),
    ...[...NUMBERS, 'live-seconds'].map((name) => [name, { type: 'string' as const }]),
  ]);
  const values = cli.parseBenchArgs(spec, USAGE) as Record<string, string | boolean | undefined>;
  const num = (name: string, fallback: number, min: number, max: number) =>
    cli.numberOption(name, values[name], fallback, min, max);
  const int = (name: string, fallback: number, min: number, max: number) =>
    Math.floor(num(name, fallback, min, max));
  const picked: Scenario[] = values.all
    ? [...SCENARIOS]
    : [values['flush-mid-wave'] && 'flush', values['redis-stopped'] && 'stopped'].filter(
        (s): s is Scenario => typeof s === 'string',
      );
  return {
    scenarios: picked.length ? picked : (['normal'] as Scenario[]),
    customers: int('customers', 10_000, 1, 10_000),
    capacity: int('capacity', 1000, 1, 50_000),
    wave2: int('wave2', 5_000, 0, 10_000),
    seed: int('seed', 13, 0, 2 ** 32 - 1),
    flushAfter: int('flush-after', 300, 1, 10_000),
    pgbenchSeconds: num('pgbench-seconds', 10, 1, 600),
    pgbench: values['no-pgbench'] !== true,
    liveSeconds: num('live-seconds', 5, 1, 120),
    json: values.json === true,
  };
}
export type Options = ReturnType<typeof readOptions>;

/** mulberry32 (seeded), so that every run asks for the same quantities 1–4. */
export function seededQuantities(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return 1 + Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * 4);
  };
}

/** The 1-, 5- and 15-minute load averages (/proc/loadavg); null elsewhere. */
export function loadAverage(): number[] | null {
  try {
    return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).map(Number);
  } catch {
    return null;
  }
}
