import { Agent } from 'undici';
import type { BenchCustomer } from '../../support/bench/bench-http';
import { withTimeout } from '../../support/bench/cli';
import { send, type WaveRequest } from '../../support/bench/wave';
import { clock, until } from './stream-run';

/*
 * The load: holds at `rate` per second for `seconds`, open loop (hold i is sent at i / rate whatever
 * the earlier answers), one seat each, by the customers in turn. Hold i takes seat i mod seats: a
 * seat that comes round again is released by its owner RELEASE_LEAD_MS before that hold is due,
 * and the hold waits for the release's answer. Each answer's arrival is stamped (the commit
 * happened before it).
 */

const RELEASE_LEAD_MS = 1_000;

export type Change = ReturnType<typeof change>;

const change = (kind: 'hold' | 'release', index: number, label: string, dueAt: number) => {
  return { kind, index, label, dueAt, sentAt: NaN, answeredAt: NaN, status: '', text: '' };
};

export async function runLoad(o: {
  api: string;
  eventId: string;
  labels: readonly string[];
  customers: readonly BenchCustomer[];
  rate: number;
  seconds: number;
}) {
  const agent = new Agent({ connections: 64, keepAliveTimeout: 60_000 });
  const [count, seats] = [Math.max(1, Math.round(o.rate * o.seconds)), o.labels.length];
  const [start, interval] = [clock() + 20, 1000 / o.rate];
  const load = { holds: [] as Change[], releases: [] as Change[], delayedBySeat: 0 };
  const freed: Promise<unknown>[] = [];
  /** Sends `req` at the change's moment; the answer's status, and its text when not `ok`. */
  const exchange = async (c: Change, req: WaveRequest, ok: string) => {
    await until(c.dueAt);
    c.sentAt = clock();
    const reply = await send(agent, o.api, req, 60_000);
    [c.answeredAt, c.status] = [clock(), reply.status];
    if (reply.status !== ok) c.text = reply.text.slice(0, 300);
    return reply;
  };
  const holdAndRelease = async (i: number): Promise<void> => {
    const label = o.labels[i % seats];
    const hold = (load.holds[i] = change('hold', i, label, start + i * interval));
    await until(hold.dueAt);
    if (i >= seats) {
      const waitedAt = clock();
      await freed[i - seats];
      if (clock() - waitedAt > 1) load.delayedBySeat += 1;
    }
    const { token } = o.customers[i % o.customers.length];
    const reply = await exchange(
      hold,
      { token, body: { eventId: o.eventId, seatIds: [label] } },
      '201',
    );
    const bookingId = reply.status === '201' ? (JSON.parse(reply.text).id as string) : null;
    if (i + seats >= count || !bookingId) return;
    const release = change('release', i, label, start + (i + seats) * interval - RELEASE_LEAD_MS);
    load.releases.push(release);
    await exchange(release, { token, method: 'DELETE', path: `/bookings/${bookingId}` }, '200');
  };
  const tasks = Array.from({ length: count }, (_, i) => (freed[i] = holdAndRelease(i)));
  await withTimeout(Promise.all(tasks), (o.seconds + 120) * 1000, 'the holds');
  const end = clock();
  await agent.close().catch(() => undefined);
  return { ...load, start, end, count };
}
