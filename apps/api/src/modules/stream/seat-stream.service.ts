import {
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnModuleDestroy,
} from '@nestjs/common';
import { Counter, Gauge, Registry } from 'prom-client';
import { SingleFlight } from '../../common/batching/single-flight';
import { RequestValidationError } from '../../common/errors/request-validation.error';
import { AppConfigService } from '../../config/app-config.service';
import { CatalogService } from '../catalog/catalog.service';
import type { SeatMap } from '../catalog/seat-map';
import { type BusListener, SeatStreamBus } from './seat-stream.bus';
import { SeatStreamPublisher } from './seat-stream.publisher';
import { SeatStreamRepository, type StreamMessage } from './seat-stream.repository';
import type { SseSink } from './sse-sink';
import { StreamError } from './stream.errors';

/** A subscriber whose client is this far behind is cut off (it resumes when it reconnects). */
const MAX_BACKLOG_BYTES = 1024 * 1024;
/** Messages kept for a subscriber while its snapshot or resume is being sent. */
const MAX_PENDING = 10_000;
const SEQ = /^\d{1,15}$/;

interface Subscriber {
  seatMap: SeatMap;
  sink: SseSink;
  /** The seq this subscriber needs next; anything lower it has, anything higher is a gap. */
  next: number;
  /** False while a snapshot or resume is on its way: messages wait in `pending`. */
  ready: boolean;
  pending: StreamMessage[];
}

/** A stream slot taken by `open`, to `start` once the response is ours. */
export interface StreamTicket {
  seatMap: SeatMap;
  resumeAfter: number | null;
  /** The client address whose STREAM_MAX_PER_IP slot this holds (null: none held). */
  client: string | null;
}

function frame(event: string, data: unknown, id?: number): string {
  return `${id === undefined ? '' : `id: ${id}\n`}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

function seatsFrame(message: StreamMessage): string {
  return frame(
    'seats',
    { seq: message.seq, changes: message.changes, sections: message.sections },
    message.seq,
  );
}

/**
 * The live seat stream of every event on this instance: who listens to which event, what each has
 * seen, and the messages from the bus. A subscriber starts from a snapshot (or resumes from the
 * history after Last-Event-ID), then gets every message in seq order; a gap (a message missed on
 * the way) or the bus going down means a fresh snapshot — never a silent hole. Snapshots of one
 * event are read once for everyone who needs one at the same moment.
 */
@Injectable()
export class SeatStreamService implements BusListener, OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(SeatStreamService.name);
  private readonly byEvent = new Map<string, Set<Subscriber>>();
  /** A snapshot read and its frame, built once for everyone of the event who needs one then. */
  private readonly snapshots = new SingleFlight<{ seq: number; bytes: Buffer }>();
  /** Messages received this tick, per event: written together, one write per subscriber. */
  private readonly arrived = new Map<string, StreamMessage[]>();
  private flushing = false;
  private count = 0;
  /** Streams per client address (STREAM_MAX_PER_IP), from `open` until the stream closes. */
  private readonly byClient = new Map<string, number>();
  private ping: NodeJS.Timeout | null = null;
  private readonly messages: Counter<'kind'>;

  constructor(
    private readonly catalog: CatalogService,
    private readonly repository: SeatStreamRepository,
    private readonly bus: SeatStreamBus,
    private readonly publisher: SeatStreamPublisher,
    private readonly config: AppConfigService,
    registry: Registry,
  ) {
    const subscribers = () => this.count;
    new Gauge({
      name: 'seatlock_stream_subscribers',
      help: 'Seat streams open on this instance',
      registers: [registry],
      collect() {
        this.set(subscribers());
      },
    });
    this.messages = new Counter({
      name: 'seatlock_stream_frames_total',
      help: 'Frames sent to seat stream subscribers, by kind (snapshot, seats, stale)',
      labelNames: ['kind'],
      registers: [registry],
    });
  }

  onApplicationBootstrap(): void {
    this.bus.listen(this);
    this.ping = setInterval(() => this.pingAll(), this.config.get('STREAM_PING_MS'));
  }

  onModuleDestroy(): void {
    if (this.ping) clearInterval(this.ping);
    // Open streams would keep the server from closing.
    for (const subscribers of this.byEvent.values()) {
      for (const subscriber of subscribers) subscriber.sink.close();
    }
  }

  /**
   * Checks the request before any byte is sent, so it can still be answered as a problem: unknown
   * event 404, a bad Last-Event-ID 400, this instance full 503 with Retry-After, `client` already
   * holding STREAM_MAX_PER_IP streams 429 with Retry-After. The client's slot is taken here, in the
   * same turn as the check, so a burst of opens cannot all pass it before any has started.
   */
  async open(
    eventId: string,
    lastEventId: string | undefined,
    client?: string,
  ): Promise<StreamTicket> {
    if (lastEventId !== undefined && !SEQ.test(lastEventId.trim())) {
      throw new RequestValidationError([
        { field: 'Last-Event-ID', messages: ['Last-Event-ID must be a seq: digits only'] },
      ]);
    }
    const seatMap = await this.catalog.getSeatMap(eventId);
    const max = this.config.get('STREAM_MAX_SUBSCRIBERS');
    if (this.count >= max) throw StreamError.tooManySubscribers(max);
    const perClient = this.config.get('STREAM_MAX_PER_IP');
    const limited = perClient > 0 && client !== undefined ? client : null;
    if (limited !== null) {
      const held = this.byClient.get(limited) ?? 0;
      if (held >= perClient) throw StreamError.tooManyForClient(perClient);
      this.byClient.set(limited, held + 1);
    }
    return {
      seatMap,
      resumeAfter: lastEventId === undefined ? null : Number(lastEventId.trim()),
      client: limited,
    };
  }

  /** Gives the ticket's client slot back; once only, whoever calls it first (close or failure). */
  release(ticket: StreamTicket): void {
    const client = ticket.client;
    if (client === null) return;
    ticket.client = null;
    const held = (this.byClient.get(client) ?? 1) - 1;
    if (held > 0) this.byClient.set(client, held);
    else this.byClient.delete(client);
  }

  /** Streams to `sink` until either side closes it. */
  async start(ticket: StreamTicket, sink: SseSink): Promise<void> {
    const eventId = ticket.seatMap.eventId;
    const subscriber: Subscriber = {
      seatMap: ticket.seatMap,
      sink,
      next: 0,
      ready: false,
      pending: [],
    };
    let subscribers = this.byEvent.get(eventId);
    const first = !subscribers;
    if (!subscribers) {
      subscribers = new Set();
      this.byEvent.set(eventId, subscribers);
    }
    subscribers.add(subscriber);
    this.count += 1;
    this.publisher.watch(true);
    sink.onClose(() => {
      this.remove(subscriber);
      this.release(ticket);
    });
    try {
      // Listening before reading where to start: nothing published meanwhile is missed.
      if (first) await this.bus.subscribe(eventId);
      await this.catchUp(subscriber, ticket.resumeAfter);
    } catch (error) {
      this.logger.warn({ err: error, eventId }, 'Seat stream could not start; closing it');
      sink.close();
    }
  }

  message(message: StreamMessage): void {
    if (!this.byEvent.has(message.eventId)) return;
    // A batch from the publisher arrives as several messages in one read: they are written to
    // each subscriber as one frame run, not one write each (the cost is per write, per socket).
    let arrived = this.arrived.get(message.eventId);
    if (!arrived) {
      arrived = [];
      this.arrived.set(message.eventId, arrived);
    }
    arrived.push(message);
    if (!this.flushing) {
      this.flushing = true;
      setImmediate(() => this.flush());
    }
  }

  private flush(): void {
    this.flushing = false;
    for (const [eventId, messages] of this.arrived) {
      this.arrived.delete(eventId);
      this.fanOut(eventId, messages);
    }
  }

  private fanOut(eventId: string, messages: StreamMessage[]): void {
    const subscribers = this.byEvent.get(eventId);
    if (!subscribers) return;
    messages.sort((a, b) => a.seq - b.seq);
    const frames = messages.map((message) => seatsFrame(message));
    const first = messages[0].seq;
    // Encoded once for every subscriber: a string would be encoded again for each socket.
    const run = messages.every((message, i) => message.seq === first + i)
      ? Buffer.from(frames.join(''))
      : null;
    let written = 0;
    for (const subscriber of subscribers) {
      if (!subscriber.ready) {
        if (subscriber.pending.length < MAX_PENDING) subscriber.pending.push(...messages);
      } else if (run !== null && subscriber.next === first) {
        if (this.write(subscriber, run)) written += messages.length;
        subscriber.next = first + messages.length;
      } else {
        for (const [i, message] of messages.entries()) {
          if (!subscriber.ready) subscriber.pending.push(message);
          else this.deliver(subscriber, message, frames[i]);
        }
      }
    }
    this.messages.inc({ kind: 'seats' }, written);
  }

  connection(up: boolean): void {
    for (const subscribers of this.byEvent.values()) {
      for (const subscriber of subscribers) {
        if (up) {
          void this.resync(subscriber);
        } else if (subscriber.ready) {
          subscriber.ready = false;
          subscriber.pending = [];
          this.stale(subscriber);
        }
      }
    }
  }

  /** Sends the history after `after` when it is whole, else a snapshot; then what waited. */
  private async catchUp(subscriber: Subscriber, after: number | null): Promise<void> {
    const eventId = subscriber.seatMap.eventId;
    if (!this.bus.connected) {
      this.stale(subscriber);
      return;
    }
    const resumed = after === null ? null : await this.resume(eventId, after);
    if (resumed) {
      if (resumed.length > 0) {
        this.write(subscriber, resumed.map((message) => seatsFrame(message)).join(''));
        this.messages.inc({ kind: 'seats' }, resumed.length);
      }
      subscriber.next = after === null ? 0 : after + 1 + resumed.length;
    } else {
      const snapshot = await this.snapshots.run(eventId, async () => {
        const read = await this.repository.snapshot(eventId);
        const seats = subscriber.seatMap.seats.map((seat, i) => ({
          label: seat.label,
          status: read.statuses[i],
        }));
        const data = { seq: read.seq, seats, sections: read.sections };
        return { seq: read.seq, bytes: Buffer.from(frame('snapshot', data, read.seq)) };
      });
      subscriber.sink.write(snapshot.bytes);
      this.messages.inc({ kind: 'snapshot' });
      subscriber.next = snapshot.seq + 1;
    }
    if (!this.bus.connected) {
      // Went down meanwhile: say so; its return brings a snapshot.
      subscriber.pending = [];
      this.stale(subscriber);
      return;
    }
    subscriber.ready = true;
    const pending = subscriber.pending.sort((a, b) => a.seq - b.seq);
    subscriber.pending = [];
    for (const message of pending) {
      if (!subscriber.ready) break;
      this.deliver(subscriber, message);
    }
  }

  /** The messages after `after` if the history still has every one of them, else null. */
  private async resume(eventId: string, after: number): Promise<StreamMessage[] | null> {
    const history = await this.bus.history(eventId, after);
    if (history === null) return null;
    if (history.length === 0) {
      // Nothing after it: up to date only if nothing after it was numbered either.
      return (await this.repository.currentSeq(eventId)) === after ? [] : null;
    }
    const whole = history.every((message, i) => message.seq === after + 1 + i);
    return whole ? history : null;
  }

  private deliver(subscriber: Subscriber, message: StreamMessage, text?: string): void {
    if (message.seq < subscriber.next) return;
    if (message.seq > subscriber.next) {
      // A message went missing on the way: start over from a snapshot that covers it.
      subscriber.pending = [message];
      void this.resync(subscriber);
      return;
    }
    if (this.write(subscriber, text ?? seatsFrame(message))) this.messages.inc({ kind: 'seats' });
    subscriber.next = message.seq + 1;
  }

  /** Writes unless the client is too far behind (then closes it); answers whether it wrote. */
  private write(subscriber: Subscriber, chunk: string | Buffer): boolean {
    if (subscriber.sink.backlog > MAX_BACKLOG_BYTES) {
      // A client this far behind resumes with Last-Event-ID (or a snapshot) once it reconnects.
      this.logger.log(
        { eventId: subscriber.seatMap.eventId },
        'Seat stream subscriber too slow; closing it',
      );
      subscriber.sink.close();
      return false;
    }
    subscriber.sink.write(chunk);
    return true;
  }

  private async resync(subscriber: Subscriber): Promise<void> {
    subscriber.ready = false;
    try {
      await this.catchUp(subscriber, null);
    } catch (error) {
      this.logger.warn({ err: error }, 'Seat stream snapshot failed; closing the stream');
      subscriber.sink.close();
    }
  }

  private stale(subscriber: Subscriber): void {
    subscriber.sink.write(frame('stale', { reason: 'redis_unavailable' }));
    this.messages.inc({ kind: 'stale' });
  }

  private pingAll(): void {
    for (const subscribers of this.byEvent.values()) {
      for (const subscriber of subscribers) subscriber.sink.write(': ping\n\n');
    }
  }

  private remove(subscriber: Subscriber): void {
    const eventId = subscriber.seatMap.eventId;
    const subscribers = this.byEvent.get(eventId);
    if (!subscribers?.delete(subscriber)) return;
    this.count -= 1;
    if (subscribers.size === 0) {
      this.byEvent.delete(eventId);
      void this.bus.unsubscribe(eventId);
    }
    if (this.count === 0) this.publisher.watch(false);
  }
}
