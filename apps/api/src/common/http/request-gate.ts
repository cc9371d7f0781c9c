import type { FastifyReply, FastifyRequest } from 'fastify';
import { Counter, Gauge, type Registry } from 'prom-client';

/**
 * Routes never held at the gate: probes, scrapes, the gateway's calls back into us, and seat
 * streams (open for minutes; they have their own cap, STREAM_MAX_SUBSCRIBERS).
 */
const UNGATED =
  /^\/(health\/|metrics(\?|$)|payments\/webhook(\?|$)|events\/[^/?]+\/seats\/stream(\?|$))/;

export interface GateLimits {
  /** Requests past the gate (parsed, validated, in our code) at once. */
  inFlight: number;
  /** Requests waiting at the gate; beyond it they are answered 503 with Retry-After. */
  queued: number;
}

/**
 * Backpressure at the door. Node reads every socket that has data, so 10,000 buyers sending at
 * once put 10,000 requests into the Nest pipeline together, each holding ~17 KB of heap until it
 * is answered: more than the API's heap cap, which it died of. The gate runs as the first
 * onRequest hook, before the body is parsed and before any middleware: at most `inFlight`
 * requests go further, the rest wait in arrival order holding little more than their sockets,
 * and past `queued` waiting a request is shed with 503 (the heap stays bounded at any crowd).
 */
interface Slot {
  state: 'waiting' | 'running' | 'done';
  admit?: () => void;
}

export class RequestGate {
  private limits: GateLimits = { inFlight: 256, queued: 10_000 };
  private running = 0;
  private readonly waiting: Slot[] = [];
  private head = 0;
  private shed: Counter | null = null;

  configure(limits: GateLimits): void {
    this.limits = limits;
  }

  /** Its load on /metrics: in flight, waiting, and how many were shed. */
  register(registry: Registry): void {
    const load = () => this.load;
    new Gauge({
      name: 'seatlock_http_requests_in_flight',
      help: 'Requests past the door (MAX_REQUESTS_IN_FLIGHT at most)',
      registers: [registry],
      collect() {
        this.set(load().inFlight);
      },
    });
    new Gauge({
      name: 'seatlock_http_requests_queued',
      help: 'Requests waiting at the door (MAX_REQUESTS_QUEUED at most)',
      registers: [registry],
      collect() {
        this.set(load().queued);
      },
    });
    this.shed = new Counter({
      name: 'seatlock_http_requests_shed_total',
      help: 'Requests answered 503 SERVICE.OVERLOADED because the line at the door was full',
      registers: [registry],
    });
  }

  /** The onRequest hook: resolves when the request may go on, or answers it 503. */
  readonly onRequest = async (
    request: FastifyRequest,
    reply: FastifyReply,
  ): Promise<FastifyReply | undefined> => {
    if (UNGATED.test(request.url)) return undefined;
    const slot: Slot = { state: 'waiting' };
    // The slot is given back once the answer is out or the client went away, whichever is first;
    // a client that leaves while it waits is dropped from the line.
    reply.raw.once('close', () => {
      const was = slot.state;
      slot.state = 'done';
      if (was === 'running') this.release();
      else if (was === 'waiting') slot.admit?.();
    });
    if (this.running < this.limits.inFlight) {
      this.running += 1;
      slot.state = 'running';
      return undefined;
    }
    if (this.waiting.length - this.head >= this.limits.queued) {
      slot.state = 'done';
      this.shed?.inc();
      await reply
        .code(503)
        .header('content-type', 'application/problem+json')
        .header('retry-after', '1')
        .send({
          type: 'https://seatlock.dev/problems/service.overloaded',
          title: 'Service unavailable',
          status: 503,
          detail: 'Too many requests are waiting; nothing was changed. Retry shortly.',
          code: 'SERVICE.OVERLOADED',
          instance: request.url,
        });
      return reply;
    }
    await new Promise<void>((admit) => {
      slot.admit = admit;
      this.waiting.push(slot);
    });
    // Gone while it waited: nothing to answer, no work to do.
    if (slot.state === 'done') reply.hijack();
    return undefined;
  };

  /** Requests past the gate now, and waiting at it. */
  get load(): { inFlight: number; queued: number } {
    return { inFlight: this.running, queued: this.waiting.length - this.head };
  }

  private release(): void {
    while (this.head < this.waiting.length) {
      const next = this.waiting[this.head];
      this.head += 1;
      if (this.head > 1024 && this.head * 2 > this.waiting.length) {
        this.waiting.splice(0, this.head);
        this.head = 0;
      }
      if (next.state !== 'waiting') continue;
      // The slot passes straight to the longest waiter: `running` stays as it is.
      next.state = 'running';
      next.admit?.();
      return;
    }
    this.running -= 1;
  }
}
