import { parseArgs } from 'node:util';
import { checkLedger, type LedgerReport } from './ledger-check';

const DEFAULT_DATABASE_URL = 'postgres://postgres:postgres@127.0.0.1:5432/seatlock';
const DEFAULT_GATEWAY_URL = 'http://127.0.0.1:4010';

const USAGE = `Usage: npm run check:ledger -- [--json] [--booking <id>]... [--wait <seconds>]

Compares the payment gateway's intents with the bookings, seats and payments in PostgreSQL and
prints every violation. Exit 0 when clean, 1 on any violation, 2 when the check could not run.

  --json             print the whole report as JSON
  --booking <id>     check only this booking and its intents (repeatable)
  --wait <seconds>   re-check until clean or the time runs out (a reconciler may still be working)

Environment: DATABASE_URL (default ${DEFAULT_DATABASE_URL}),
             GATEWAY_URL (default ${DEFAULT_GATEWAY_URL})`;

export interface CliOutput {
  out: (line: string) => void;
  err: (line: string) => void;
}

const consoleOutput: CliOutput = {
  out: (line) => console.log(line),
  err: (line) => console.error(line),
};

function counted(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}

function summary(report: LedgerReport): string {
  const checked =
    `${counted(report.intents, 'intent')} (${report.capturedIntents} captured), ` +
    `${counted(report.bookings, 'booking')} (${report.confirmedBookings} confirmed), ` +
    `${counted(report.bookedSeats, 'booked seat')}, ${counted(report.payments, 'payment')}` +
    (report.attempts > 1 ? `, after ${report.attempts} checks` : '');
  return report.violations.length === 0
    ? `Ledger clean: ${checked}.`
    : `Ledger has ${counted(report.violations.length, 'violation')}: ${checked}.`;
}

/** Where the check connects, without the password. */
function describeTarget(databaseUrl: string, gatewayUrl: string): string {
  try {
    const url = new URL(databaseUrl);
    return `PostgreSQL ${url.host}${url.pathname}, gateway ${gatewayUrl}`;
  } catch {
    return `gateway ${gatewayUrl}`;
  }
}

/** `npm run check:ledger`: answers the exit code (0 clean, 1 violations, 2 could not check). */
export async function runCheckLedger(
  argv: string[],
  env: NodeJS.ProcessEnv = process.env,
  output: CliOutput = consoleOutput,
): Promise<number> {
  let flags: { json?: boolean; booking?: string[]; wait?: string; help?: boolean };
  try {
    flags = parseArgs({
      args: argv,
      options: {
        json: { type: 'boolean' },
        booking: { type: 'string', multiple: true },
        wait: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (error) {
    output.err(`${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (flags.help) {
    output.out(USAGE);
    return 0;
  }
  const waitSeconds = flags.wait === undefined ? 0 : Number(flags.wait);
  if (flags.wait !== undefined && (flags.wait.trim() === '' || !(waitSeconds >= 0))) {
    output.err(`--wait takes a number of seconds (0 or more), not "${flags.wait}"\n\n${USAGE}`);
    return 2;
  }
  const bookingIds = flags.booking?.map((id) => id.trim()).filter((id) => id.length > 0);
  if (flags.booking !== undefined && bookingIds?.length === 0) {
    output.err(`--booking takes a booking id\n\n${USAGE}`);
    return 2;
  }

  const databaseUrl = env.DATABASE_URL || DEFAULT_DATABASE_URL;
  const gatewayUrl = env.GATEWAY_URL || DEFAULT_GATEWAY_URL;
  let report: LedgerReport;
  try {
    report = await checkLedger({
      databaseUrl,
      gatewayUrl,
      bookingIds,
      settleMs: Math.round(waitSeconds * 1000),
    });
  } catch (error) {
    output.err(
      `check:ledger could not read the ledger (${describeTarget(databaseUrl, gatewayUrl)}): ` +
        `${error instanceof Error ? error.message : String(error)}`,
    );
    return 2;
  }

  if (flags.json) {
    output.out(JSON.stringify(report, null, 2));
  } else {
    for (const violation of report.violations) output.out(violation);
    // A mistyped --booking would otherwise pass as "clean" with nothing checked.
    for (const id of report.unknownBookingIds) {
      output.err(`note: no booking and no intent has id ${id}`);
    }
    output.out(summary(report));
  }
  return report.violations.length === 0 ? 0 : 1;
}

if (require.main === module) {
  void runCheckLedger(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
