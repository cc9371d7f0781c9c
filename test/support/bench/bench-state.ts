import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { metricValue } from './bench-http';
import { withClient } from './bench-postgres';

/* What a wave left behind, read outside its counted window, and the checks of seats vs bookings. */

/** Waits (`timeoutMs` at most) until no outbox message is pending; answers how many still are. */
export async function drainOutbox(databaseUrl: string, timeoutMs = 30_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  return withClient(databaseUrl, async (client) => {
    for (;;) {
      const { rows } = await client.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM outbox_messages WHERE status = 'pending'`,
      );
      if (rows[0].n === 0 || Date.now() > deadline) return rows[0].n;
      await sleep(50);
    }
  });
}

export interface SeatRow {
  label: string;
  row_name: string | null;
  seat_number: number;
  status: string;
  booking_id: string | null;
}

export type BookingRow = { id: string; customer_id: string; status: string; seat_labels: string[] };

/** An event's seats (by row, then number) and bookings, read straight from PostgreSQL. */
export async function storedRows(databaseUrl: string, eventId: string) {
  return withClient(databaseUrl, async (client) => {
    const seats = await client.query<SeatRow>(
      `SELECT label, row_name, seat_number, status, booking_id FROM seats
        WHERE event_id = $1 ORDER BY row_name, seat_number, position`,
      [eventId],
    );
    const bookings = await client.query<BookingRow>(
      `SELECT id, customer_id, status, seat_labels FROM bookings WHERE event_id = $1`,
      [eventId],
    );
    return { seats: seats.rows, bookings: bookings.rows };
  });
}

/** Bookings still holding their seats. */
export function liveBookings(bookings: readonly BookingRow[]): BookingRow[] {
  return bookings.filter((b) => b.status === 'held' || b.status === 'confirmed');
}

/** The labels that occur more than once. */
export function twice(labels: readonly string[]): string[] {
  const seen = new Map<string, number>();
  for (const label of labels) seen.set(label, (seen.get(label) ?? 0) + 1);
  return [...seen].filter(([, n]) => n > 1).map(([label]) => label);
}

/**
 * The labels where seats and live bookings disagree: a booking's seats must name it, and a taken
 * seat must be listed by the live booking it names.
 */
export function seatsDisagreeing(seats: readonly SeatRow[], live: readonly BookingRow[]): string[] {
  const seatByLabel = new Map(seats.map((seat) => [seat.label, seat]));
  const liveById = new Map(live.map((booking) => [booking.id, booking]));
  const mismatched = new Set<string>();
  for (const booking of live) {
    for (const label of booking.seat_labels) {
      if (seatByLabel.get(label)?.booking_id !== booking.id) mismatched.add(label);
    }
  }
  for (const seat of seats) {
    if (seat.status === 'free') continue;
    const owner = seat.booking_id ? liveById.get(seat.booking_id) : undefined;
    if (!owner?.seat_labels.includes(seat.label)) mismatched.add(seat.label);
  }
  return [...mismatched];
}

/**
 * seatlock_holds_total for each of `outcomes`, and seatlock_hold_fallbacks_total as `fallbacks`
 * when asked. /metrics reads PostgreSQL: read it outside counted windows.
 */
export async function holdMetrics<O extends string>(
  api: string,
  outcomes: readonly O[],
  fallbacks = false,
): Promise<Record<O | 'fallbacks', number>> {
  const metrics = {} as Record<O | 'fallbacks', number>;
  for (const outcome of outcomes) {
    metrics[outcome] = await metricValue(api, 'seatlock_holds_total', { outcome });
  }
  if (fallbacks) metrics.fallbacks = await metricValue(api, 'seatlock_hold_fallbacks_total');
  return metrics;
}

type CommandStats = Record<string, { calls: number; failed: number }>;

/**
 * Calls per command since the server started (INFO commandstats): a script's commands count under
 * their own names; `failed` counts errors such as an EVALSHA answered NOSCRIPT.
 */
export async function commandStats(url: string): Promise<CommandStats> {
  const client = new Redis(url, { maxRetriesPerRequest: 0, lazyConnect: true });
  client.on('error', () => undefined);
  try {
    await client.connect();
    const stats: CommandStats = {};
    for (const line of (await client.info('commandstats')).split('\n')) {
      const match = /^cmdstat_([^:]+):calls=(\d+).*?failed_calls=(\d+)/.exec(line.trim());
      if (match) stats[match[1]] = { calls: Number(match[2]), failed: Number(match[3]) };
    }
    return stats;
  } finally {
    client.disconnect();
  }
}

/** Calls per command between two commandStats; our own INFO and FLUSHALL left out. */
export function commandDelta(after: CommandStats, before: CommandStats): CommandStats {
  const delta: CommandStats = {};
  for (const [command, { calls, failed }] of Object.entries(after)) {
    const was = before[command] ?? { calls: 0, failed: 0 };
    if (calls > was.calls && command !== 'info' && command !== 'flushall') {
      delta[command] = { calls: calls - was.calls, failed: failed - was.failed };
    }
  }
  return delta;
}
