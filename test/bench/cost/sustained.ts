import { setTimeout as sleep } from 'node:timers/promises';
import { fmt, printReport, row } from '../../support/bench/report';
import type { Stack } from './cost-stack';
import * as ops from './operations';

/*
 * Issue 23's sustained run: holds at full speed for a minute while the work they leave behind is
 * counted every SAMPLE_MS (outbox messages pending, notification deliveries pending, seat changes
 * not yet published); the peaks, and how long after the last hold all three were empty.
 */

const SAMPLE_MS = 250;
/** Goal: every backlog empty this soon after the last hold. */
const DRAIN_GOAL_S = 1;
const DRAIN_TIMEOUT_MS = 60_000;

const COUNTS = `SELECT
  (SELECT count(*) FROM outbox_messages WHERE status = 'pending')::int AS outbox,
  (SELECT count(*) FROM notification_deliveries WHERE status = 'pending')::int AS deliveries,
  (SELECT count(*) FROM seat_changes)::int AS "seatChanges"`;

type Counts = { outbox: number; deliveries: number; seatChanges: number };

async function counts(stack: Stack): Promise<Counts> {
  return (await stack.db.query<Counts>(COUNTS)).rows[0];
}

/** Samples the backlogs until `stop` says so; answers their peaks and the samples taken. */
async function sampleUntil(stack: Stack, stop: () => boolean) {
  const peaks: Counts = { outbox: 0, deliveries: 0, seatChanges: 0 };
  let samples = 0;
  while (!stop()) {
    const now = await counts(stack);
    for (const key of Object.keys(peaks) as (keyof Counts)[]) {
      peaks[key] = Math.max(peaks[key], now[key]);
    }
    samples += 1;
    await sleep(SAMPLE_MS);
  }
  return { peaks, samples };
}

/** Seconds from `since` until every backlog is empty; null after DRAIN_TIMEOUT_MS. */
async function drainSeconds(stack: Stack, since: number): Promise<number | null> {
  while (performance.now() - since < DRAIN_TIMEOUT_MS) {
    const now = await counts(stack);
    if (now.outbox + now.deliveries + now.seatChanges === 0) {
      return (performance.now() - since) / 1000;
    }
    await sleep(50);
  }
  return null;
}

export async function sustainedHolds(stack: Stack, p: ops.Prepared, seconds: number) {
  let done = false;
  const sampling = sampleUntil(stack, () => done);
  const load = await ops.httpLoad(stack, p, 'hold', seconds);
  const end = performance.now();
  done = true;
  const { peaks, samples } = await sampling;
  const drain = await drainSeconds(stack, end);
  return { seconds, holds: load.ops, perSecond: load.detail.perSecond, peaks, samples, drain };
}

export type Sustained = Awaited<ReturnType<typeof sustainedHolds>>;

export function printSustained(s: Sustained, json: unknown): void {
  const drained = s.drain !== null && s.drain <= DRAIN_GOAL_S ? 'met' : 'MISSED';
  printReport(
    {
      title: `Sustained: holds at full speed for ${s.seconds} s (64 connections), backlogs every ${SAMPLE_MS} ms`,
      rows: [
        row('holds answered 201 / per second', `${fmt(s.holds)} / ${fmt(s.perSecond)}/s`),
        row('peak outbox messages pending', fmt(s.peaks.outbox)),
        row('peak notification deliveries pending', fmt(s.peaks.deliveries)),
        row('peak seat changes not yet published', fmt(s.peaks.seatChanges)),
        row(
          'all three empty, seconds after the last hold',
          s.drain === null ? `> ${DRAIN_TIMEOUT_MS / 1000}` : fmt(s.drain, 2),
          undefined,
          undefined,
          `<= ${DRAIN_GOAL_S} s: ${drained}`,
        ),
      ],
    },
    json,
  );
}
