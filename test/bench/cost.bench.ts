/*
 * CPU per operation, per process, the after-work included, beside its floor from the same run.
 *
 *   npm run bench:cost -- [--quick] [--seconds N] [--json]
 *
 * One API, the gateway simulator, PostgreSQL (the whole server) and Redis, the load generator
 * (this process) left out. Idle first, then each operation at full speed (64 connections) for the
 * window and on until its after-work is done: hold, 409, best available, GA unit claim, paid
 * booking, release, one outbox message delivered, expiry (an API with a short TTL). Floors: pgbench
 * of the minimal SQL (API stopped), GET /health/live, the simulator's own intent, SET NX + DEL.
 * Exit 0 unless something broke (a missed goal is no failure). See docs/benchmarks.md.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import * as cli from '../support/bench/cli';
import { measureOperation, type OperationCost, waitDrained } from './cost/after-work';
import { log, run, type Stack, startStack, stopApi } from './cost/cost-stack';
import { costLines, printCostReport } from './cost/cost-report';
import { awaitExpiries, holdForExpiry } from './cost/expiry';
import * as floors from './cost/floors';
import * as ops from './cost/operations';
import { awaitDeliveries, type OutboxSetup, prepareOutbox, scheduleMessages } from './cost/outbox';
import { closeFlow, type FlowLoad, paidFlow, prepareFlow } from './cost/paid-flow';
import { type CpuTotals, msPerSecond } from './cost/process-cpu';
import { printSustained, sustainedHolds } from './cost/sustained';

const USAGE = `Usage: npm run bench:cost -- [options]

  --quick       3 s windows, 10 s idle settle and measurement (default 10 s, 30 s, 30 s)
  --seconds N   the window of each operation at full speed
  --sustained S only this: holds at full speed for S seconds (issue 23: 60), the backlogs' peaks
                and their drain time after the last hold
  --json        also print one JSON object as the last line of stdout`;

function parseOptions() {
  const values = cli.parseBenchArgs(
    {
      quick: { type: 'boolean' },
      seconds: { type: 'string' },
      sustained: { type: 'string' },
      json: { type: 'boolean' },
    },
    USAGE,
  );
  const quick = values.quick === true;
  return {
    quick,
    seconds: cli.numberOption('seconds', values.seconds, quick ? 3 : 10, 1, 120),
    sustained:
      values.sustained === undefined
        ? null
        : cli.numberOption('sustained', values.sustained, 60, 1, 600),
    idleSeconds: quick ? 10 : 30,
    /** Outbox messages delivered, and rows for their SQL floor. */
    messages: quick ? 2_000 : 5_000,
    json: values.json === true,
  };
}
type Options = ReturnType<typeof parseOptions>;

/** After a settle, each group's CPU ms per second over `seconds` with nothing happening. */
async function measureIdle(stack: Stack, seconds: number): Promise<CpuTotals> {
  await waitDrained(stack, stack.cpu.read(), null, 60_000);
  log(`idle: ${seconds} s settle, ${seconds} s measured`);
  await sleep(seconds * 1000);
  const start = stack.cpu.read();
  await sleep(seconds * 1000);
  return msPerSecond(start, stack.cpu.read());
}

/** The four autocannon operations and the paid flow, each after 1 s of warm-up. */
async function requestOperations(
  stack: Stack,
  p: ops.Prepared,
  flow: FlowLoad,
  o: Options,
  idle: CpuTotals,
) {
  const out: OperationCost[] = [];
  for (const name of ops.HTTP_OPERATIONS) {
    log(`${name}: 1 s warm-up, ${o.seconds} s at full speed, then its after-work`);
    await ops.httpLoad(stack, p, name, 1);
    out.push(
      await measureOperation(stack, idle, name, () => ops.httpLoad(stack, p, name, o.seconds)),
    );
  }
  log(`paid: 1 s warm-up, ${o.seconds} s of bookings`);
  await paidFlow(stack, flow, 1);
  out.push(await measureOperation(stack, idle, 'paid', () => paidFlow(stack, flow, o.seconds)));
  await closeFlow(flow);
  return out;
}

/** Release of the holds' bookings (the first 5 % as warm-up), then outbox messages delivered. */
async function afterOperations(
  stack: Stack,
  p: ops.Prepared,
  outbox: OutboxSetup,
  o: Options,
  idle: CpuTotals,
) {
  const bookings = await ops.heldBookings(stack, p);
  const warm = Math.max(64, Math.floor(bookings.length / 20));
  log(`release: ${bookings.length} held bookings (${warm} as warm-up)`);
  await ops.release(stack, bookings.slice(0, warm));
  const released = await measureOperation(stack, idle, 'release', () =>
    ops.release(stack, bookings.slice(warm)),
  );
  log(`outbox: 200 messages as warm-up, then ${o.messages}`);
  await awaitDeliveries(outbox, await scheduleMessages(stack, outbox, 200, 0), 60_000);
  await waitDrained(stack, stack.cpu.read(), idle, 30_000);
  // Due in 3 s: the inserts are done before the measurement starts.
  const ids = await scheduleMessages(stack, outbox, o.messages, 3_000);
  const delivered = await measureOperation(
    stack,
    idle,
    'outbox',
    () => awaitDeliveries(outbox, ids, 120_000),
    60_000,
    false,
  );
  return [released, delivered];
}

/** The API and simulator floors (measured as operations), then the SQL and Redis floors. */
async function measureFloors(stack: Stack, outbox: OutboxSetup, o: Options, idle: CpuTotals) {
  log('floors: GET /health/live, then the simulator intent');
  await floors.healthLoad(stack, 1);
  const health = await measureOperation(stack, idle, 'health', () =>
    floors.healthLoad(stack, o.seconds),
  );
  await floors.intentLoad(stack, 1);
  const intent = await measureOperation(stack, idle, 'intent', () =>
    floors.intentLoad(stack, o.seconds),
  );
  log('stopping the API for the pgbench floors');
  await stopApi(stack);
  const total = (c: OperationCost) => {
    const out = { ...c.requestUs };
    for (const key of Object.keys(out) as (keyof CpuTotals)[]) out[key] += c.afterUs[key];
    return out;
  };
  return {
    floors: {
      holdSql: await floors.seatFloor(stack, 'hold', o.seconds, 1),
      flowSql: await floors.seatFloor(stack, 'flow', o.seconds, 2),
      outboxSql: await floors.outboxFloor(stack, outbox, o.messages * 4),
      redis: await floors.redisFloor(stack, o.seconds),
      health: total(health),
      intent: total(intent),
    },
    measured: { health, intent },
  };
}

/** Expiry on an API with a short TTL: the measurement starts a second before the first lapse. */
async function measureExpiry(stack: Stack, p: ops.Prepared, o: Options, idle: CpuTotals) {
  const held = await holdForExpiry(stack, p, o.seconds);
  await waitDrained(stack, stack.cpu.read(), idle, 60_000);
  const wait = held.firstLapse - 1_000 - performance.now();
  log(`expiry: ${held.holds} holds lapse from ${Math.max(0, Math.round(wait / 1000))} s on`);
  if (wait > 0) await sleep(wait);
  const timeoutMs = (o.seconds + 60) * 1000;
  // Not quiet first: drained above, and the first holds lapse now.
  const work = () => awaitExpiries(stack, held.eventId, timeoutMs);
  const cost = await measureOperation(stack, idle, 'expiry', work, 60_000, false);
  return { ...cost, detail: { ...cost.detail, holds: held.holds, exhausted: held.exhausted } };
}

function notesOf(measured: readonly OperationCost[]): string[] {
  return measured.flatMap((m) => {
    const notes: string[] = [];
    if (m.ops === 0) notes.push(`${m.name}: no operation completed`);
    if (m.detail.exhausted) notes.push(`${m.name}: ran out of seats (some requests answered 409)`);
    if (!m.drain.drained) notes.push(`${m.name}: after-work not done after the timeout`);
    if ((m.otherCores ?? 0) > 0.2)
      notes.push(`${m.name}: other processes used ${m.otherCores?.toFixed(2)} cores`);
    if (m.otherDatabaseCores > 0.2) {
      notes.push(
        `${m.name}: other databases' backends used ${m.otherDatabaseCores.toFixed(2)} cores`,
      );
    }
    const expiredBefore = Number(m.detail.expiredBeforeStart ?? 0);
    if (expiredBefore > 0) notes.push(`expiry: ${expiredBefore} holds expired before the window`);
    return notes;
  });
}

/** --sustained: the hold alone for a long window, its backlogs sampled. */
async function sustainedMain(o: Options, seconds: number): Promise<number> {
  const stack = await startStack();
  const p = await ops.prepare(stack, seconds);
  await waitDrained(stack, stack.cpu.read(), null, 60_000);
  log(`sustained: holds at full speed for ${seconds} s`);
  const result = await sustainedHolds(stack, p, seconds);
  printSustained(result, o.json ? { benchmark: 'cost', ok: true, sustained: result } : undefined);
  return 0;
}

async function main(): Promise<number> {
  const o = parseOptions();
  if (o.sustained !== null) return sustainedMain(o, o.sustained);
  const stack = await startStack();
  const p = await ops.prepare(stack, o.seconds);
  const flow = await prepareFlow(stack, o.seconds);
  const outbox = await prepareOutbox(stack);
  const idle = await measureIdle(stack, o.idleSeconds);
  const measured = [
    ...(await requestOperations(stack, p, flow, o, idle)),
    ...(await afterOperations(stack, p, outbox, o, idle)),
  ];
  const floorRun = await measureFloors(stack, outbox, o, idle);
  measured.push(await measureExpiry(stack, p, o, idle));
  const notes = notesOf([...measured, floorRun.measured.health, floorRun.measured.intent]);
  const lines = costLines(measured, floorRun.floors);
  const json = {
    benchmark: 'cost',
    ok: true,
    options: o,
    idle,
    operations: measured,
    ...floorRun,
    lines,
    notes,
  };
  printCostReport(
    { ops: measured, floors: floorRun.floors, idle, notes },
    o.json ? json : undefined,
  );
  return 0;
}

run.main(main, 30 * 60_000);
