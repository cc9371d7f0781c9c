/*
 * The live seat stream under a sale (issue 14): N subscribers on one instance, holds at a fixed
 * rate, every change to every subscriber in order, and what polling would cost instead.
 *
 * Starts the built API (npm start's node options, rate limits off) on a fresh database and a
 * private redis-server, one event (20 rows of 50 seats; --rows 200 for 10,000) and 200 customers;
 * the phases are in stream/measure.ts. Exit 1 on: a subscriber with a gap, a state unequal to
 * GET /seats, a lost subscriber (connection error, stream ended, non-200, no snapshot), a frame
 * whose content differs between subscribers, or the API dying. Refused holds are reported, not
 * failed. Uses DATABASE_URL's server, only its database seatlock_bench_stream. See
 * docs/benchmarks.md.
 */
import { readFileSync } from 'node:fs';
import { BenchError, numberOption, parseBenchArgs } from '../support/bench/cli';
import { printReport } from '../support/bench/report';
import { measure, type StreamOptions } from './stream/measure';
import { type Measured, type Report, reportSections, summarize } from './stream/report';
import { ROWS, run, SEATS_PER_ROW, STREAM_POLL_MS } from './stream/stream-run';

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
  type Name = 'subscribers' | 'rows' | 'rate' | 'seconds' | 'poll-seconds' | 'live-seconds';
  const number = (name: Name, full: number, short: number, max: number) =>
    numberOption(name, values[name], values.quick === true ? short : full, 1, max);
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

/** Fails early when this process's open-file limit (/proc/self/limits) is too low for n streams. */
function checkOpenFiles(streams: number): void {
  let limit: number;
  try {
    const limits = readFileSync('/proc/self/limits', 'utf8').split('\n');
    limit = Number(limits.find((l) => l.startsWith('Max open files'))?.split(/\s{2,}/)[1]);
  } catch {
    return;
  }
  const needed = streams + 1_000;
  if (limit < needed) {
    throw new BenchError(
      `the open-file limit is ${limit}: ${streams} streams need about ${needed} (ulimit -n ${needed})`,
    );
  }
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
  checkOpenFiles(options.subscribers);
  const measured = await measure(options);
  const report = summarize(options, measured);
  const output = options.json ? json(options, measured, report) : undefined;
  printReport(reportSections(options, report), output);
  return report.ok ? 0 : 1;
}

run.main(main, 15 * 60_000);
