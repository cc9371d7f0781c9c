import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from 'pg';
import { readLedger } from './ledger-readers';
import { normalizeId } from './ledger-rows';
import { evaluateLedger, type LedgerFindings } from './ledger-rules';

/**
 * The ledger check: does the money at the gateway agree with the bookings, seats and payments in
 * PostgreSQL? `evaluateLedger` (ledger-rules) is the pure rule set over plain rows (unit-tested
 * with hand-made rows); `checkLedger` reads the rows from a real database and a real gateway
 * (ledger-readers) and applies it.
 */

export type {
  Cents,
  IntentStatus,
  LedgerBooking,
  LedgerIntent,
  LedgerPayment,
  LedgerRows,
  LedgerSeat,
} from './ledger-rows';
export { evaluateLedger, type LedgerFindings } from './ledger-rules';

export interface LedgerReport extends LedgerFindings {
  /** How many times the ledger was read; more than one when settleMs let a reconciler finish. */
  attempts: number;
}

export interface LedgerCheckOptions {
  databaseUrl: string;
  gatewayUrl: string;
  /** Only these bookings and the intents that name them; other tests or tenants share the data. */
  bookingIds?: string[];
  /** Re-check until clean for up to this long: a reconciler may still be voiding or capturing. */
  settleMs?: number;
  /** Intents per gateway page (the gateway allows at most 100). */
  pageSize?: number;
  /** How long to wait between re-checks while settling. */
  retryIntervalMs?: number;
}

/**
 * Compares the gateway's intents with the bookings, seats and payments in PostgreSQL. With
 * `settleMs`, re-reads until the ledger is clean or the time is up, and answers the last reading.
 */
export async function checkLedger(options: LedgerCheckOptions): Promise<LedgerReport> {
  const scope = options.bookingIds?.map(normalizeId);
  const gateway = { url: options.gatewayUrl, pageSize: options.pageSize ?? 100 };
  const deadline = Date.now() + (options.settleMs ?? 0);
  const client = new Client({
    connectionString: options.databaseUrl,
    connectionTimeoutMillis: 5000,
  });
  await client.connect();
  try {
    for (let attempts = 1; ; attempts += 1) {
      const findings = evaluateLedger(await readLedger(client, gateway, scope), scope);
      const left = deadline - Date.now();
      if (findings.violations.length === 0 || left <= 0) return { ...findings, attempts };
      await sleep(Math.min(options.retryIntervalMs ?? 500, left));
    }
  } finally {
    await client.end();
  }
}
