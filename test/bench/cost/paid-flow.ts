import { runPhase, type Seat, setUpLoad, type Vu } from '../flow-load';
import { log, run, type Stack } from './cost-stack';
import { CONNECTIONS } from './operations';

/* The paid flow as bench:flow drives it: hold → POST /bookings/{id}/payments → confirmed, captured. */

export type FlowLoad = { vus: Vu[]; seats: Seat[] };

/** Events and one virtual customer per connection, for a warm-up and `seconds`. */
export function prepareFlow(stack: Stack, seconds: number): Promise<FlowLoad> {
  const o = { customers: CONNECTIONS, warmup: 1, duration: seconds };
  return setUpLoad(stack.api.url, run.adminToken, o, log);
}

/** `seconds` of bookings; an operation is one booking paid (captured) and confirmed. */
export async function paidFlow(stack: Stack, load: FlowLoad, seconds: number) {
  const phase = await runPhase(seconds, load.vus, load.seats, stack.api);
  const ops = phase.cycles.length;
  const detail = {
    perSecond: ops / seconds,
    errors: phase.errors,
    errorSamples: phase.errorSamples,
    violations: phase.violations.slice(0, 5),
    outOfSeats: phase.outOfSeats,
  };
  return { ops, detail };
}

export async function closeFlow(load: FlowLoad): Promise<void> {
  await Promise.all(load.vus.map((vu) => vu.client.close()));
}
