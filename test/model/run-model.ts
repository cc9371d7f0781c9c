import { execFile } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

/**
 * `npm run model`: the SPIN model of the hold → pay → confirm / release / expiry protocol
 * (seatlock.pml, docs/model.md), checked exhaustively in each configuration below, and each
 * injected bug shown to produce a counterexample trail. Prints a table; exits 1 when a property
 * fails where it must hold, a bug goes unfound, or a search is cut short.
 */
const run = promisify(execFile);
const MODEL = join(__dirname, 'seatlock.pml');

interface Check {
  name: string;
  what: string;
  defines: string[];
  /** 'holds': every property, exhaustively; otherwise the property whose violation must be found. */
  expect: 'holds' | string;
}

/** Faults each configuration allows (budgets): a crash, Redis losing its keys, a lease lapsing. */
const SYNC = ['-DNO_ASYNC'];
const CHECKS: Check[] = [
  {
    name: 'redis-loss',
    what: '2 customers, 1 seat; Redis loses every key (or TIME goes back) once',
    defines: [...SYNC, '-DMAXCRASH=0', '-DMAXLOSS=1', '-DMAXLAPSE=0'],
    expect: 'holds',
  },
  {
    name: 'crash',
    what: '2 customers, 1 seat; any actor crashes once, anywhere',
    defines: [...SYNC, '-DMAXCRASH=1', '-DMAXLOSS=0', '-DMAXLAPSE=0'],
    expect: 'holds',
  },
  {
    name: 'lease-lapse',
    what: '2 customers, 1 seat; a payment lease lapses under its holder once',
    defines: [...SYNC, '-DMAXCRASH=0', '-DMAXLOSS=0', '-DMAXLAPSE=1'],
    expect: 'holds',
  },
  {
    name: 'two-seats',
    what: '2 customers, 2 seats (one wants A, one A and B); Redis loss once',
    defines: [...SYNC, '-DNS=2', '-DMAXCRASH=0', '-DMAXLOSS=1', '-DMAXLAPSE=0'],
    expect: 'holds',
  },
  {
    name: 'async-webhook',
    what: '2 customers, 1 seat, one pays by asynchronous card (webhook, reconciler asks); ledger',
    defines: ['-DPAYERS=1', '-DCHECK_LEDGER', '-DMAXCRASH=0', '-DMAXLOSS=0', '-DMAXLAPSE=0'],
    expect: 'holds',
  },
  {
    name: 'bug: confirm without fence',
    what: 'injected: the confirm without its conditions (held, not lapsed, the fence)',
    defines: [
      ...SYNC,
      '-DBUG_CONFIRM_WITHOUT_FENCE',
      '-DMAXCRASH=0',
      '-DMAXLOSS=1',
      '-DMAXLAPSE=0',
    ],
    expect: 'P1_never_two_confirmed_bookings_for_one_seat',
  },
  {
    name: 'bug: newest token wins',
    what: 'injected: a hold takes a taken seat when its Redis token is newer than the fence',
    defines: [...SYNC, '-DBUG_HOLD_TRUSTS_TOKEN', '-DMAXCRASH=0', '-DMAXLOSS=1', '-DMAXLAPSE=0'],
    expect: 'P2_booked_seat_iff_its_confirmed_booking',
  },
  {
    name: 'bug: F1 (found)',
    what: 'the found bug: a busy request deletes a payment another actor is authorizing',
    defines: [...SYNC, '-DBUG_DISCARD_CLAIMED', '-DMAXCRASH=0', '-DMAXLOSS=0', '-DMAXLAPSE=0'],
    expect: 'P4_no_open_authorization',
  },
  {
    name: 'bug: F2 (found)',
    what: 'the found bug: the reconciler’s stale confirm takes back a captured payment',
    defines: [
      '-DBUG_CONFIRM_ANY_STATUS',
      '-DPAYERS=1',
      '-DCHECK_LEDGER',
      '-DMAXCRASH=0',
      '-DMAXLOSS=0',
      '-DMAXLAPSE=0',
    ],
    expect: 'P5_confirmed_booking_paid_once',
  },
];

interface Result {
  check: Check;
  ok: boolean;
  outcome: string;
  states: number;
  depth: number;
  seconds: number;
  trail: string[];
}

async function verify(check: Check): Promise<Result> {
  const dir = await mkdtemp(join(tmpdir(), 'seatlock-model-'));
  try {
    await copyFile(MODEL, join(dir, 'seatlock.pml'));
    await run('spin', ['-a', ...check.defines, 'seatlock.pml'], { cwd: dir });
    await run('gcc', ['-O2', '-DSAFETY', '-DCOLLAPSE', '-DMEMLIM=4096', '-o', 'pan', 'pan.c'], {
      cwd: dir,
    });
    const started = performance.now();
    // pan exits non-zero when it finds an error: read its report either way.
    const pan = await run('./pan', ['-m3000000'], { cwd: dir, maxBuffer: 64 << 20 }).catch(
      (error: { stdout?: string }) => ({ stdout: error.stdout ?? '' }),
    );
    const seconds = (performance.now() - started) / 1000;
    const out = pan.stdout;
    const states = Number(/([\d.e+]+) states, stored/.exec(out)?.[1] ?? NaN);
    const depth = Number(/depth reached (\d+)/.exec(out)?.[1] ?? NaN);
    const errors = Number(/errors: (\d+)/.exec(out)?.[1] ?? NaN);
    const violated = /assertion violated (\S+)/.exec(out)?.[1];
    const invalidEnd = /invalid end state/.test(out);
    const cut = /max search depth too small|out of memory|Search not completed/.test(out);
    let trail: string[] = [];
    if (errors > 0) {
      const replay = await run('spin', ['-t', ...check.defines, 'seatlock.pml'], {
        cwd: dir,
        maxBuffer: 64 << 20,
      });
      trail = replay.stdout
        .split('\n')
        .map((line) => line.trim())
        .filter((line) => line.includes(': ') && !line.startsWith('spin:'));
    }
    const outcome =
      errors === 0
        ? cut
          ? 'search cut short'
          : 'all properties hold'
        : violated
          ? `${violated} violated`
          : invalidEnd
            ? 'invalid end state (stuck)'
            : 'error';
    const ok =
      check.expect === 'holds' ? errors === 0 && !cut : errors > 0 && violated === check.expect;
    return { check, ok, outcome, states, depth, seconds, trail };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  await run('spin', ['-V']).catch(() => {
    throw new Error('spin is not installed: apt-get install spin (Debian package), then rerun');
  });
  const results: Result[] = [];
  const queue = [...CHECKS];
  const workers = Array.from({ length: Math.max(1, availableParallelism()) }, async () => {
    for (let check = queue.shift(); check; check = queue.shift()) {
      const result = await verify(check);
      results.push(result);
      console.log(`${result.ok ? 'ok  ' : 'FAIL'} ${check.name}: ${result.outcome}`);
    }
  });
  await Promise.all(workers);
  results.sort((a, b) => CHECKS.indexOf(a.check) - CHECKS.indexOf(b.check));

  console.log('\n| check | what | expected | outcome | states | depth | seconds |');
  console.log('|---|---|---|---|---:|---:|---:|');
  for (const r of results) {
    const expected = r.check.expect === 'holds' ? 'all hold' : `trail: ${r.check.expect}`;
    console.log(
      `| ${r.ok ? '' : '**FAIL** '}${r.check.name} | ${r.check.what} | ${expected} | ${r.outcome} | ` +
        `${r.states.toLocaleString('en')} | ${r.depth} | ${r.seconds.toFixed(1)} |`,
    );
  }
  for (const r of results.filter((x) => x.check.expect !== 'holds' && x.trail.length > 0)) {
    console.log(`\nTrail of "${r.check.name}" (${r.trail.length} steps shown by the model):`);
    for (const line of r.trail.slice(0, 40)) console.log(`  ${line}`);
  }
  const failed = results.filter((r) => !r.ok);
  if (failed.length > 0) {
    console.error(`\n${failed.length} model check(s) failed: ${failed.map((r) => r.check.name)}`);
    process.exit(1);
  }
  console.log(`\nAll ${results.length} model checks as expected.`);
}

void mkdir(tmpdir(), { recursive: true })
  .then(main)
  .catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exit(1);
  });
