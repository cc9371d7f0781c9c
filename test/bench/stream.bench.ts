/*
 * The live seat stream under a sale (issue 14): N subscribers on one instance, holds at a fixed
 * rate, every change to every subscriber in order, and what polling would cost instead.
 *
 *   npm run bench:stream -- [--subscribers 5000] [--rows 20] [--rate 200] [--seconds 10] [--quick]
 *                           [--poll-seconds 5] [--live-seconds 5] [--no-fanout-ceiling] [--json]
 *
 * Starts the built API (npm start's node options, rate limits off, STREAM_* defaults) on a fresh
 * database of its own with a private redis-server, creates one event of 1,000 seats (one section,
 * 20 rows x 50; --rows 200 for 10,000) and registers 200 customers. The phases (stream/measure.ts): N subscribers open
 * the event's stream; holds at `rate` per second for `seconds` (stream/hold-load.ts); settle and
 * check every subscriber against GET /seats; commit-to-client latency per (subscriber, change)
 * (stream/latency.ts); the API's CPU, memory and socket queues throughout (stream/api-watch.ts);
 * polling's cost on the same server; the ceilings, the API stopped (stream/ceilings.ts).
 *
 * Exit 1 on: a subscriber with a gap, a state unequal to GET /seats, a lost subscriber (a
 * connection error, the server ending its stream, a non-200, no snapshot), a frame whose content
 * differs between subscribers, or the API dying. Holds refused are reported, not failed.
 * Uses DATABASE_URL's server, only the database seatlock_bench_stream. See docs/benchmarks.md.
 */
import { readFileSync } from 'node:fs';
import { HOUR_MS } from '../support/bench/bench-run';
import { BenchError, parseBenchArgs, numberOption } from '../support/bench/cli';
import { printReport } from '../support/bench/report';
import { measure, type Stack, type StreamOptions } from './stream/measure';
import { DATABASE, ROWS, run, SEATS_PER_ROW, STREAM_POLL_MS } from './stream/stream-run';
import { type Measured, type Report, summarize } from './stream/summary';
import { reportSections } from './stream/table';

const HOLD_TTL_SECONDS = 900;

const USAGE = `Usage: npm run bench:stream -- [options]

  --subscribers N      streams open on the one instance (1 to 10000, default 5000; --quick 500)
  --rows N             rows of 50 seats in the event (1 to 1000, default 20: 1,000 seats)
  --rate R             holds per second (1 to 2000, default 200)
  --seconds S          seconds of holds (1 to 120, default 10; --quick 3)
  --poll-seconds S     measured seconds of the GET /events/{id}/seats window (default 5; --quick 3)
  --live-seconds S     measured seconds of the /health/live window (default 5; --quick 3)
  --no-fanout-ceiling  skip the minimal fan-out ceiling (its own N connections, the same replay)
  --quick              a smoke run: 500 subscribers, 3 s
  --json               also print one JSON object as the last line of stdout`;

function readOptions(): StreamOptions & { json: boolean } {
  const [text, flag] = [{ type: 'string' }, { type: 'boolean' }] as const;
  const values = parseBenchArgs(
    {
      subscribers: text,
      rows: text,
      rate: text,
      seconds: text,
      'poll-seconds': text,
      'live-seconds': text,
      'no-fanout-ceiling': flag,
      quick: flag,
      json: flag,
    },
    USAGE,
  );
  const quick = values.quick === true;
  type Name = 'subscribers' | 'rows' | 'rate' | 'seconds' | 'poll-seconds' | 'live-seconds';
  const number = (name: Name, full: number, short: number, max: number) =>
    numberOption(name, values[name], quick ? short : full, 1, max);
  return {
    subscribers: Math.floor(number('subscribers', 5_000, 500, 10_000)),
    rows: Math.floor(number('rows', ROWS, ROWS, 1_000)),
    rate: number('rate', 200, 200, 2_000),
    seconds: number('seconds', 10, 3, 120),
    pollSeconds: number('poll-seconds', 5, 3, 120),
    liveSeconds: number('live-seconds', 5, 3, 120),
    fanoutCeiling: values['no-fanout-ceiling'] !== true,
    json: values.json === true,
  };
}

/** This process's open-file limit (/proc/self/limits), or null elsewhere. */
function openFileLimit(): number | null {
  try {
    const limits = readFileSync('/proc/self/limits', 'utf8').split('\n');
    const soft = Number(limits.find((l) => l.startsWith('Max open files'))?.split(/\s{2,}/)[1]);
    return Number.isFinite(soft) ? soft : null;
  } catch {
    return null;
  }
}

/** The API on a fresh database and a private Redis, its streams uncapped; how to start another. */
async function stack(): Promise<Stack> {
  const databaseUrl = await run.freshDatabase(DATABASE);
  const redis = await run.privateRedis();
  const startApi = () =>
    run.startApi({
      database: databaseUrl,
      redis: redis.url,
      env: {
        HOLD_TTL_SECONDS: String(HOLD_TTL_SECONDS),
        STREAM_POLL_MS: String(STREAM_POLL_MS),
        // Every subscriber connects from 127.0.0.1: the per-address cap (50) would refuse most.
        STREAM_MAX_PER_IP: '0',
        NOTIFY_POLL_MS: HOUR_MS,
      },
    });
  const api = await startApi();
  return { api, startApi, databaseUrl, redisUrl: redis.url, redisPid: redis.pid };
}

function json(o: StreamOptions, m: Measured, r: Report) {
  return {
    benchmark: 'stream',
    ok: r.ok,
    subscribers: o.subscribers,
    rate: o.rate,
    seconds: o.seconds,
    seats: o.rows * SEATS_PER_ROW,
    streamPollMs: STREAM_POLL_MS,
    summary: r.summary,
    details: {
      statuses: r.statuses,
      open: m.open,
      settled: m.settled,
      checks: m.checks,
      framesCountedByApi: m.frames,
      tally: m.tally,
      match: m.match,
      cpu: m.cpu,
      seatsWindow: m.seatsWindow,
      liveWindow: m.liveWindow,
      fanout: m.fanout && { cpu: m.fanout.cpu, latency: m.fanout.latency, openMs: m.fanout.openMs },
      publish: m.publish,
      apiLog: m.apiLog,
      apiHeapSamples: m.heap.samples,
      socketQueueSamples: m.socketQueues.samples,
      died: m.died,
    },
    notes: r.notes,
  };
}

async function main(): Promise<number> {
  const options = readOptions();
  const [limit, needed] = [openFileLimit(), options.subscribers + 1_000];
  if (limit !== null && limit < needed) {
    throw new BenchError(
      `the open-file limit is ${limit}: ${options.subscribers} streams need about ` +
        `${needed} (ulimit -n ${needed})`,
    );
  }
  const measured = await measure(options, await stack());
  const report = summarize(options, measured);
  printReport(
    reportSections(options, report),
    options.json ? json(options, measured, report) : undefined,
  );
  return report.ok ? 0 : 1;
}

run.main(main, 15 * 60_000);
