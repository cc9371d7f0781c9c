import { setTimeout as sleep } from 'node:timers/promises';
import * as http from '../../support/bench/bench-http';
import { BenchError } from '../../support/bench/cli';
import { OUTBOX_CLAIM_BATCH } from '../../support/bench/minimal-sql';
import { OutboundWebhookReceiver } from '../../support/outbound-webhook-receiver';
import { run, type Stack } from './cost-stack';

/*
 * One outbox message delivered to a customer's webhook endpoint (a receiver in this process): the
 * messages are written by SQL, due a moment later, so that the measurement holds only the
 * dispatcher's fan-out, the delivery worker's POST and its bookkeeping, not the inserts.
 */

/** The dispatcher's claim (NOTIFY_BATCH_SIZE's default), as the OUTBOX_SCRIPT floor takes it. */
export const CLAIM_BATCH = OUTBOX_CLAIM_BATCH;

export interface OutboxSetup {
  receiver: OutboundWebhookReceiver;
  customerId: string;
  bookingId: string;
  payload: string;
}

/** A customer with an endpoint for every topic, and a real hold whose webhook is the warm-up. */
export async function prepareOutbox(stack: Stack): Promise<OutboxSetup> {
  const api = stack.api.url;
  const receiver = await OutboundWebhookReceiver.start();
  run.track({ stop: () => receiver.close() });
  const [{ id: customerId, token }] = await http.registerCustomers(api, 1, 'cost-notify');
  const endpoint = http.expectStatus<{ secret: string }>(
    await http.call(api, 'POST', '/webhook-endpoints', {
      token,
      body: { url: receiver.url, events: ['*'] },
    }),
    201,
    'POST /webhook-endpoints',
  );
  receiver.secret = endpoint.secret;
  const event = await http.createEvent(api, run.adminToken, 'Notify', 1, 4);
  const body = { eventId: event.id, seatIds: [event.labels[0]] };
  const answer = await http.call(api, 'POST', '/bookings', { token, body });
  const booking = http.expectStatus<{ id: string }>(answer, 201, 'the notified hold');
  await receiver.waitFor("the hold's webhook", (requests) => requests.length > 0, 30_000);
  receiver.reset();
  return { receiver, customerId, bookingId: booking.id, payload: JSON.stringify({ booking }) };
}

/** `count` messages in one statement, due in `dueInMs`; the NOTIFY makes the dispatcher plan. */
const SCHEDULE = `WITH inserted AS (
  INSERT INTO outbox_messages (id, topic, customer_id, aggregate_id, payload, available_at)
  SELECT gen_random_uuid(), 'booking.held', $1, $2, $3, now() + $5 * interval '1 millisecond'
    FROM generate_series(1, $4::int)
  RETURNING id
) SELECT array_agg(id) AS ids, pg_notify('outbox', '') FROM inserted`;

export async function scheduleMessages(
  stack: Stack,
  s: OutboxSetup,
  count: number,
  dueInMs: number,
) {
  const params = [s.customerId, s.bookingId, s.payload, count, dueInMs];
  const { rows } = await stack.db.query<{ ids: string[] }>(SCHEDULE, params);
  s.receiver.reset();
  return new Set(rows[0].ids);
}

/** Until every message of `ids` reached the receiver (its first POST each). */
export async function awaitDeliveries(s: OutboxSetup, ids: ReadonlySet<string>, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  const arrived = new Set<string>();
  for (let read = 0; arrived.size < ids.size; await sleep(50)) {
    for (const { idempotencyKey: key } of s.receiver.requests.slice(read)) {
      if (key && ids.has(key)) arrived.add(key);
    }
    read = s.receiver.requests.length;
    if (Date.now() > deadline) {
      throw new BenchError(`outbox: ${arrived.size} of ${ids.size} messages delivered`);
    }
  }
  const requests = s.receiver.requests.length;
  const badSignatures = s.receiver.requests.filter((r) => r.signatureProblem !== null).length;
  return { ops: arrived.size, detail: { requests, badSignatures } };
}

/** Pending rows for the floor, due now, no NOTIFY: the API's dispatcher must not take them first. */
export async function pendingForFloor(stack: Stack, s: OutboxSetup, rows: number): Promise<void> {
  await stack.db.query(
    `INSERT INTO outbox_messages (id, topic, customer_id, aggregate_id, payload)
     SELECT gen_random_uuid(), 'booking.held', $1, $2, $3 FROM generate_series(1, $4::int)`,
    [s.customerId, s.bookingId, s.payload, rows],
  );
  await stack.db.query('VACUUM ANALYZE outbox_messages');
}
