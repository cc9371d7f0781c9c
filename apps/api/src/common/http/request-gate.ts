import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Counter, Gauge, type Registry } from 'prom-client';

/**
 * Routes never held at the gate: probes, scrapes, the gateway's calls back into us, and seat
 * streams (open for minutes; they have their own cap, STREAM_MAX_SUBSCRIBERS).
 */
const UNGATED =
  /^\/(health\/|metrics(\?|$)|payments\/webhook(\?|$)|events\/[^/?]+\/seats\/stream(\?|$))/;

/**
 * Bodies declared this small wait in the request's own buffer or, still arriving, are read at the
 * door by anyone in line: no more than a waiting socket held before (Node reads 64 KB at a time
 * into a request nobody consumes), and more than any of our request bodies needs (a 1,000-seat
 * hold is ~10 KB).
 */
const SMALL_BODY_BYTES = 16 * 1024;

/**
 * Larger bodies, and chunked ones of unknown size, are read at the door this many at once: at
 * most this many times the body limit in memory, however many are sent.
 */
const LARGE_BODY_READS = 16;

export interface GateLimits {
  /** Requests past the gate (parsed, validated, in our code) at once. */
  inFlight: number;
  /** Requests waiting at the gate; beyond it they are answered 503 with Retry-After. */
  queued: number;
}

/** A place in a pool: not asked for yet, waiting in its line, held, or given back. */
interface Ticket {
  state: 'idle' | 'waiting' | 'held' | 'done';
  admit?: () => void;
}

const holds = (ticket: Ticket): boolean => ticket.state === 'held';

/** At most `limit` tickets held at once; the others wait in arrival order. */
class Pool {
  private holders = 0;
  private readonly line: Ticket[] = [];
  private head = 0;

  constructor(public limit: number) {}

  get held(): number {
    return this.holders;
  }

  /**
   * Asks for a place: held at once (nothing to wait for), or a promise settled once admitted or
   * given up (leave() set it 'done'). Not async: 10,000 waiters, one promise each.
   */
  take(ticket: Ticket): Promise<void> | undefined {
    if (ticket.state !== 'idle') return undefined;
    if (this.holders < this.limit) {
      this.holders += 1;
      ticket.state = 'held';
      return undefined;
    }
    ticket.state = 'waiting';
    return new Promise<void>((admit) => {
      ticket.admit = admit;
      this.line.push(ticket);
    });
  }

  /** Hands a held place on (to the longest waiter); the ticket may ask again. */
  giveBack(ticket: Ticket): void {
    if (ticket.state !== 'held') return;
    ticket.state = 'idle';
    this.release();
  }

  /** Gives the place back, or leaves the line (waking the waiter, which then sees 'done'). */
  leave(ticket: Ticket): void {
    const was = ticket.state;
    ticket.state = 'done';
    if (was === 'held') this.release();
    else if (was === 'waiting') ticket.admit?.();
  }

  private release(): void {
    while (this.head < this.line.length) {
      const next = this.line[this.head];
      this.head += 1;
      if (this.head > 1024 && this.head * 2 > this.line.length) {
        this.line.splice(0, this.head);
        this.head = 0;
      }
      if (next.state !== 'waiting') continue;
      // The place passes straight to the longest waiter: `holders` stays as it is.
      next.state = 'held';
      next.admit?.();
      return;
    }
    this.holders -= 1;
  }
}

/**
 * One gated request on its way through the door; itself its ticket for a slot in flight. Kept
 * small: at a crowd, 10,000 of them wait at once.
 */
interface Visit extends Ticket {
  /** A place among the large bodies being read (LARGE_BODY_READS), if it needs one. */
  lane?: Ticket;
  /** Counted at the door: reading its body, or waiting for a lane or a slot. */
  atDoor: boolean;
  /** Its response is closed: answered, or the client (or a timeout) went away. */
  gone: boolean;
  /** The body read at the door, handed to the body parser by the preParsing hook. */
  body?: Buffer[];
  stopReading?: () => void;
}

type BodyKind = 'none' | 'small' | 'large' | 'oversized';

function bodyKind(raw: IncomingMessage, bodyLimit: number): BodyKind {
  // Node's parser has refused a request with both, or with a malformed length, already.
  if (raw.headers['transfer-encoding'] !== undefined) return 'large';
  const length = Number(raw.headers['content-length'] ?? 0);
  if (!(length > 0)) return 'none';
  if (length <= SMALL_BODY_BYTES) return 'small';
  return length <= bodyLimit ? 'large' : 'oversized';
}

/**
 * Backpressure at the door. Node reads every socket that has data, so 10,000 buyers sending at
 * once put 10,000 requests into the Nest pipeline together, each holding ~17 KB of heap until it
 * is answered: more than the API's heap cap, which it died of. The gate runs as the first
 * onRequest hook, before the body is parsed and before any middleware: at most `inFlight`
 * requests go further, the rest wait in arrival order holding little more than their sockets,
 * and past `queued` at the door a request is shed with 503 (the heap stays bounded at any crowd).
 *
 * A request takes its slot only once its whole body has arrived: a client trickling a body holds
 * a place in the line, never one of the `inFlight` slots (REQUEST_TIMEOUT_MS ends it; see
 * app.factory.ts), so slow clients cannot starve the others. Small bodies (the API's own) that
 * came with their headers stay in the request's buffer, costing nothing; those still arriving are
 * read at the door by anyone in line (no more than a waiting socket buffered before); larger or
 * chunked ones `LARGE_BODY_READS` at a time. One that proves larger than the body limit goes on
 * holding only its lane place, to the parser's 413 (no work to do).
 */
export class RequestGate {
  private limits: GateLimits = { inFlight: 256, queued: 10_000 };
  private readonly work = new Pool(256);
  private readonly lane = new Pool(LARGE_BODY_READS);
  private atDoor = 0;
  private reading = 0;
  private readonly visits = new WeakMap<FastifyRequest, Visit>();
  private shed: Counter | null = null;

  constructor(private readonly bodyLimit: number) {}

  configure(limits: GateLimits): void {
    this.limits = limits;
    this.work.limit = limits.inFlight;
  }

  /** The gate's hooks: the first onRequest hook, and the preParsing one that hands bodies on. */
  attach(fastify: FastifyInstance): void {
    fastify.addHook('onRequest', this.onRequest);
    fastify.addHook('preParsing', this.preParsing);
  }

  /** Its load on /metrics: in flight, waiting, reading, and how many were shed. */
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
      help: 'Requests at the door, their body arriving or waiting for a slot (MAX_REQUESTS_QUEUED at most)',
      registers: [registry],
      collect() {
        this.set(load().queued);
      },
    });
    new Gauge({
      name: 'seatlock_http_requests_reading',
      help: 'Requests at the door whose body is still arriving (they hold no slot)',
      registers: [registry],
      collect() {
        this.set(load().reading);
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
    // Everyone at the door will want a slot once its body is in: count them with those in flight.
    if (this.work.held + this.atDoor >= this.limits.inFlight + this.limits.queued) {
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
    const visit: Visit = { state: 'idle', atDoor: true, gone: false };
    this.atDoor += 1;
    // Everything is given back once the answer is out or the client went away (a timeout
    // destroys the socket: the same 'close'), whichever is first.
    reply.raw.once('close', () => this.leave(visit));

    const raw = request.raw;
    let kind = bodyKind(raw, this.bodyLimit);
    if (kind === 'large' || kind === 'oversized') {
      visit.lane = { state: 'idle' };
      await this.lane.take(visit.lane);
      if (!holds(visit.lane)) return this.gone(reply);
      if (kind === 'large') {
        const read = await this.read(raw, visit);
        if (!read) return this.gone(reply);
        this.keepBody(request, visit, read.chunks);
        if (read.overflow) kind = 'oversized';
        else this.lane.leave(visit.lane);
      }
      // Past the body limit: the parser refuses it 413, no slot needed.
      if (kind === 'oversized') {
        this.leaveDoor(visit);
        return undefined;
      }
    }
    for (;;) {
      await this.work.take(visit);
      if (!holds(visit)) return this.gone(reply);
      // Past the door with its whole body (a small one waits in the request's own buffer, where
      // Fastify reads it), or without one.
      if (kind !== 'small' || raw.complete) break;
      // Admitted as its headers were parsed: the rest of what came with them is parsed by the
      // loop's next turn (most bodies).
      await new Promise(setImmediate);
      if (visit.gone) return this.gone(reply);
      if (raw.complete) break;
      // Still arriving: the slot goes on to the next in line, the body is read at the door
      // (REQUEST_TIMEOUT_MS bounds it), and the request lines up again.
      this.work.giveBack(visit);
      const read = await this.read(raw, visit);
      if (!read) return this.gone(reply);
      this.keepBody(request, visit, read.chunks);
      kind = 'none';
    }
    this.leaveDoor(visit);
    return undefined;
  };

  /** Hands the body read at the door to the body parser, in place of the spent request stream. */
  readonly preParsing = async (
    request: FastifyRequest,
    _reply: FastifyReply,
    payload: NodeJS.ReadableStream,
  ): Promise<NodeJS.ReadableStream> => {
    const visit = this.visits.get(request);
    const body = visit?.body;
    if (!visit || !body) return payload;
    visit.body = undefined;
    return Readable.from(body, { objectMode: false });
  };

  /** Requests past the gate now, at it (reading or waiting), and of those still reading. */
  get load(): { inFlight: number; queued: number; reading: number } {
    return { inFlight: this.work.held, queued: this.atDoor, reading: this.reading };
  }

  /** Reads the body: its chunks, past the body limit the first ones (overflow), null if gone. */
  private read(
    raw: IncomingMessage,
    visit: Visit,
  ): Promise<{ chunks: Buffer[]; overflow: boolean } | null> {
    if (visit.gone) return Promise.resolve(null);
    this.reading += 1;
    return new Promise((resolve) => {
      const chunks: Buffer[] = [];
      let size = 0;
      let settled = false;
      const settle = (result: { chunks: Buffer[]; overflow: boolean } | null) => {
        if (settled) return;
        settled = true;
        raw.off('data', onData);
        raw.off('end', onEnd);
        raw.off('error', onGone);
        raw.off('close', onGone);
        visit.stopReading = undefined;
        this.reading -= 1;
        resolve(result);
      };
      const onData = (chunk: Buffer) => {
        chunks.push(chunk);
        size += chunk.length;
        if (size > this.bodyLimit) {
          // Enough to be refused 413; the error filter reads and drops the rest.
          raw.pause();
          settle({ chunks, overflow: true });
        }
      };
      const onEnd = () => settle({ chunks, overflow: false });
      const onGone = () => settle(null);
      visit.stopReading = onGone;
      raw.on('data', onData);
      raw.once('end', onEnd);
      raw.once('error', onGone);
      raw.once('close', onGone);
    });
  }

  private keepBody(request: FastifyRequest, visit: Visit, chunks: Buffer[]): void {
    visit.body = chunks;
    this.visits.set(request, visit);
  }

  private leaveDoor(visit: Visit): void {
    if (!visit.atDoor) return;
    visit.atDoor = false;
    this.atDoor -= 1;
  }

  private leave(visit: Visit): void {
    visit.gone = true;
    visit.body = undefined;
    visit.stopReading?.();
    this.leaveDoor(visit);
    if (visit.lane) this.lane.leave(visit.lane);
    this.work.leave(visit);
  }

  /** Gone while it waited or read: nothing to answer, no work to do. */
  private gone(reply: FastifyReply): undefined {
    reply.hijack();
    return undefined;
  }
}
