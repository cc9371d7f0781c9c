/*
 * A lease holder in its own process, for the stale-writer test: it takes the seat's lock, reports its
 * fencing token, then waits for the parent — which freezes it with SIGSTOP past its TTL — and finally
 * writes with its (now stale) token whatever its lease says, as a buggy or paused holder would.
 * Forked with tsx's loader; the lock library comes from its TypeScript source.
 */
import { Client } from 'pg';
import { LockProvider } from '../../libs/lock/src';

const [redisUrl, databaseUrl, key, ttlMs, sql, eventId, label, bookingId] = process.argv.slice(2);

function send(message: Record<string, unknown>): void {
  process.send?.(message);
}

async function main(): Promise<void> {
  const lock = new LockProvider({ mode: 'redis', redisUrl });
  for (let i = 0; i < 100 && !lock.isAvailable(); i += 1) {
    await new Promise((r) => setTimeout(r, 20));
  }
  const db = new Client({ connectionString: databaseUrl });
  await db.connect();
  await lock.using(key, { ttlMs: Number(ttlMs) }, async (context) => {
    send({ type: 'holding', fence: context.fence.toString() });
    await new Promise((resolve) => process.once('message', resolve));
    let held = true;
    try {
      context.assertHeld();
    } catch {
      held = false;
    }
    const result = await db.query(sql, [eventId, label, bookingId, context.fence.toString()]);
    send({ type: 'wrote', rows: result.rowCount, held, aborted: context.signal.aborted });
  });
  await db.end();
  await lock.close();
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
