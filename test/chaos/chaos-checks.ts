/*
 * The chaos run's checks, once the load has stopped and the system settled: no seat booked twice,
 * every booking's seats consistent with its status, check:ledger clean, nothing left pending, every
 * delivery marked delivered really received (signed), every answer a customer got what the rows
 * say, no 500 outside a PostgreSQL restart, no API instance exited on its own. Each check adds
 * its violations (at most a few lines of each kind) to `found`.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Client as PgClient } from 'pg';
import { checkLedger, type LedgerReport } from '../../apps/api/src/ledger/ledger-check';
import { withTimeout } from '../support/bench/cli';
import type { OutboundWebhookReceiver } from '../support/outbound-webhook-receiver';
import { log, type Supervised } from './chaos-cluster';
import { bump, type FiveHundred, type Load, type Traffic } from './chaos-load';

/** A 500 overlapping [restart begun, accepting again + this] counts as "while PostgreSQL was down". */
const PG_GRACE_SECONDS = 2;
type Row = Record<string, any>;

/** Adds `lines` after `prefix`: at most `max`, then "... n more". */
function add(found: string[], prefix: string, lines: string[], max = 10): void {
  const more = lines.length > max ? [`... ${lines.length - max} more`] : [];
  found.push(...[...lines.slice(0, max), ...more].map((line) => `${prefix}${line}`));
}

const PENDING = `SELECT
  (SELECT count(*) FROM outbox_messages WHERE status = 'pending')::int AS outbox,
  (SELECT count(*) FROM notification_deliveries WHERE status = 'pending')::int AS deliveries,
  (SELECT count(*) FROM bookings WHERE status = 'held')::int AS held,
  (SELECT count(*) FROM payments WHERE next_action IS NOT NULL)::int AS payments`;
const GATEWAY_PENDING = `SELECT count(*)::int AS "gatewayWebhooks"
  FROM gateway_sim.webhook_deliveries WHERE delivered_at IS NULL AND failed_at IS NULL`;

/** Waits (at most `seconds`) until nothing is pending, held or on its way anywhere. */
async function settle(apiDb: PgClient, gatewayDb: PgClient, seconds: number) {
  const started = Date.now();
  for (;;) {
    const left: Row = await Promise.all([apiDb.query(PENDING), gatewayDb.query(GATEWAY_PENDING)])
      .then(([api, gateway]) => ({ ...api.rows[0], ...gateway.rows[0] }))
      .catch((error: Error) => ({ error: error.message }));
    const settled = !left.error && Object.values(left).every((n) => n === 0);
    const waitedSeconds = Math.round((Date.now() - started) / 100) / 10;
    if (settled || waitedSeconds > seconds) return { settled, waitedSeconds, left };
    await sleep(500);
  }
}

const SEAT_CHECKS: [string, string, (r: Row) => string][] = [
  [
    'seat booked twice',
    `SELECT b.event_id, l.label, count(*)::int AS n, array_agg(b.id::text) AS ids
     FROM bookings b CROSS JOIN unnest(b.seat_labels) AS l(label)
     WHERE b.status = 'confirmed' GROUP BY 1, 2 HAVING count(*) > 1`,
    (r) => `${r.label} of event ${r.event_id} in ${r.n} confirmed bookings ${r.ids.join(', ')}`,
  ],
  [
    'seat owned by no booking of it',
    `SELECT s.label, s.status, s.booking_id FROM seats s LEFT JOIN bookings b ON b.id = s.booking_id
     WHERE s.status <> 'free'
       AND (b.id IS NULL OR b.event_id <> s.event_id OR NOT s.label = ANY (b.seat_labels))`,
    (r) => `${r.label} is ${r.status} for booking ${r.booking_id}, which does not hold it`,
  ],
  [
    'booked seat of an unconfirmed booking',
    `SELECT s.label, b.id, b.status FROM seats s JOIN bookings b ON b.id = s.booking_id
     WHERE s.status = 'booked' AND b.status <> 'confirmed'`,
    (r) => `${r.label} booked for booking ${r.id}, which is ${r.status}`,
  ],
  [
    'confirmed booking without its seats',
    `SELECT b.id, l.label, s.status, s.booking_id
     FROM bookings b CROSS JOIN unnest(b.seat_labels) AS l(label)
     LEFT JOIN seats s ON s.event_id = b.event_id AND s.label = l.label
     WHERE b.status = 'confirmed'
       AND (s.status IS DISTINCT FROM 'booked' OR s.booking_id IS DISTINCT FROM b.id)`,
    (r) => `booking ${r.id}: ${r.label} is ${r.status} for ${r.booking_id}`,
  ],
  [
    'live hold without its seats under its fence',
    `SELECT b.id, l.label, s.status, s.booking_id, s.fence, b.fence AS booking_fence
     FROM bookings b CROSS JOIN unnest(b.seat_labels) AS l(label)
     LEFT JOIN seats s ON s.event_id = b.event_id AND s.label = l.label
     WHERE b.status = 'held' AND b.expires_at > now()
       AND (s.status IS DISTINCT FROM 'held' OR s.booking_id IS DISTINCT FROM b.id
            OR s.fence IS DISTINCT FROM b.fence)`,
    (r) =>
      `booking ${r.id}: ${r.label} is ${r.status} for ${r.booking_id} fence ${r.fence} (booking fence ${r.booking_fence})`,
  ],
  [
    'ended booking still owns seats',
    `SELECT b.id, b.status, s.label, s.status AS seat_status FROM seats s
     JOIN bookings b ON b.id = s.booking_id WHERE b.status IN ('released', 'expired', 'cancelled')`,
    (r) => `booking ${r.id} is ${r.status} but ${r.label} is ${r.seat_status} for it`,
  ],
];

/** The seat checks, and the rows by status (and holds past their TTL) for the report. */
async function rowChecks(apiDb: PgClient, found: string[]) {
  for (const [name, sql, describe] of SEAT_CHECKS) {
    add(found, `${name}: `, (await apiDb.query(sql)).rows.map(describe));
  }
  const counts = async (table: string): Promise<Record<string, number>> => {
    const sql = `SELECT status, count(*)::int AS n FROM ${table} GROUP BY 1`;
    return Object.fromEntries((await apiDb.query(sql)).rows.map((r: Row) => [r.status, r.n]));
  };
  const [bookings, payments, outbox, deliveries] = await Promise.all(
    ['bookings', 'payments', 'outbox_messages', 'notification_deliveries'].map(counts),
  );
  const past = `SELECT count(*)::int AS n FROM bookings WHERE status = 'held' AND expires_at <= now()`;
  const heldPastTtl: number = (await apiDb.query(past)).rows[0].n;
  return { bookings, payments, outbox, deliveries, heldPastTtl };
}

/** Every confirmed, released or cancelled answer (not put in doubt later) against the rows. */
async function answersAgainstRows(apiDb: PgClient, told: Load['told'], found: string[]) {
  const final = new Set(['confirmed', 'released', 'cancelled']);
  const checked = [...told].filter(([, answer]) => !answer.uncertain && final.has(answer.status));
  const sql = `SELECT id::text, status FROM bookings WHERE id = ANY ($1::uuid[])`;
  const { rows } = await apiDb.query(sql, [checked.map(([id]) => id)]);
  const actual = new Map(rows.map((r: Row) => [r.id, r.status]));
  for (const [id, { status }] of checked.filter(([id, e]) => actual.get(id) !== e.status)) {
    found.push(`answers vs rows: ${id} was answered ${status}, the row says ${actual.get(id)}`);
  }
  return checked.length;
}

/**
 * What the receiver accepted (200) by endpoint and Idempotency-Key (the message id), bad
 * signatures, and every delivery the API marked delivered that never reached its endpoint.
 */
async function webhookChecks(apiDb: PgClient, input: CheckInput, found: string[]) {
  const { requests } = input.receiver;
  const accepted = requests.filter((r) => r.answered === 200);
  const keys = new Set(accepted.map((r) => `${r.endpoint}/${r.idempotencyKey}`));
  const byType: Record<string, number> = {};
  for (const r of accepted) bump(byType, String(r.event?.type));
  const bad = requests.flatMap((r) => r.signatureProblem ?? []);
  add(found, 'webhooks: bad signature: ', bad, 5);
  const sql = `SELECT message_id::text AS key, endpoint_id::text AS endpoint
    FROM notification_deliveries WHERE channel = 'webhook' AND status = 'delivered'`;
  const { rows } = await apiDb.query(sql);
  const lost = rows.filter((r: Row) => !keys.has(`${input.endpoints.get(r.endpoint)}/${r.key}`));
  add(
    found,
    'webhooks: delivered, never received by its endpoint: ',
    lost.map((r) => r.key),
  );
  const [received, distinct, badSignatures] = [accepted.length, keys.size, bad.length];
  const answered503 = requests.length - received;
  const figures = { received, distinct, duplicates: received - distinct, answered503 };
  return { ...figures, badSignatures, byType, deliveredInDb: rows.length };
}

/** 500s that overlap no PostgreSQL restart window (plus its grace); answers how many. */
function unexcused500s(input: CheckInput, found: string[]): number {
  const during = (i: FiveHundred, w: Load['pgWindows'][number]): boolean =>
    i.from <= (w.to ?? Infinity) + PG_GRACE_SECONDS && i.to >= w.from;
  const { pgWindows } = input.load;
  const unexcused = input.traffic.fiveHundreds.filter((i) => !pgWindows.some((w) => during(i, w)));
  const line = (i: FiveHundred) =>
    `${i.kind} ${i.from.toFixed(1)}-${i.to.toFixed(1)} s on API ${i.backend}: ${i.body}`;
  add(found, '500 outside a PostgreSQL outage: ', unexcused.map(line));
  return unexcused.length;
}

/** "exited on its own" lines, with the last three things it logged. */
export function exitLines(app: Supervised): string[] {
  const said = (line: string): string => {
    try {
      const entry = JSON.parse(line);
      return `${entry.msg ?? ''}${entry.err ? ` (${entry.err.message ?? ''})` : ''}`;
    } catch {
      return line;
    }
  };
  return app.unexpectedExits.map((exit) => {
    const last = exit.tail.map(said).filter(Boolean).slice(-3).join(' | ').slice(0, 400);
    return `${app.name} exited on its own at ${exit.at.toFixed(1)} s (${exit.code ?? exit.signal}), restarted: ${last}`;
  });
}

/** check:ledger's rules on the run's database and gateway, re-read for up to 10 s. */
async function ledgerCheck(databaseUrl: string, gatewayUrl: string, found: string[]) {
  const checked = checkLedger({ databaseUrl, gatewayUrl, settleMs: 10_000 });
  const report: Partial<LedgerReport> = await withTimeout(checked, 60_000, 'check:ledger').catch(
    (error: Error) => ({ violations: [`could not run: ${error.message}`] }),
  );
  const { violations = [], intents, confirmedBookings, capturedIntents, attempts } = report;
  add(found, 'check:ledger: ', violations, 20);
  return { violations, intents, capturedIntents, confirmedBookings, attempts };
}

export interface CheckInput {
  db: { api: string; gateway: string };
  gatewayUrl: string;
  traffic: Traffic;
  adminToken: string;
  receiver: OutboundWebhookReceiver;
  endpoints: Map<string, number>;
  load: Load;
  apis: Supervised[];
  settleSeconds: number;
}

/** Settles, then runs every check; answers the violations and the figures for the report. */
export async function checkAll(input: CheckInput) {
  const { load, traffic, adminToken } = input;
  const [apiDb, gatewayDb] = [input.db.api, input.db.gateway].map((url) => new PgClient(url));
  for (const db of [apiDb, gatewayDb]) db.on('error', () => undefined);
  try {
    await Promise.all([apiDb.connect(), gatewayDb.connect()]);
    log(`settling (at most ${input.settleSeconds} s)`);
    const settled = await settle(apiDb, gatewayDb, input.settleSeconds);
    log(`settled: ${JSON.stringify(settled)}`);
    const found: string[] = [];
    const ledger = await ledgerCheck(input.db.api, input.gatewayUrl, found);
    const figures = await rowChecks(apiDb, found);
    const answersChecked = await answersAgainstRows(apiDb, load.told, found);
    const webhooks = await webhookChecks(apiDb, input, found);
    const outbox = (status: string) =>
      traffic.call('setup', 'GET', `/admin/outbox?status=${status}&limit=1`, { token: adminToken });
    const [dead, pending] = [await outbox('dead'), await outbox('pending')];
    if (pending.status !== 200) found.push(`GET /admin/outbox?status=pending: ${pending.status}`);
    const listed = Number(pending.headers['x-total-count'] ?? 0);
    const stuck = { messages: Math.max(listed, figures.outbox.pending ?? 0) };
    for (const [what, n] of Object.entries({ ...stuck, deliveries: figures.deliveries.pending })) {
      if (n > 0) found.push(`outbox: ${n} ${what} still pending after the settle time`);
    }
    const unexcused500 = unexcused500s(input, found);
    // An API instance dying on its own is Seatlock's failure (the simulator's is a rig anomaly).
    found.push(...input.apis.flatMap(exitLines));
    if (load.faultError) found.push(`fault schedule: ${load.faultError}`);
    const outboxDeadListed = Number(dead.headers['x-total-count'] ?? 0);
    const checks = { settled, ledger, answersChecked, webhooks, unexcused500, outboxDeadListed };
    return { violations: found, figures, ...checks };
  } finally {
    await Promise.all([apiDb.end(), gatewayDb.end()].map((p) => p.catch(() => undefined)));
  }
}
