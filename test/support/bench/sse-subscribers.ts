import { StringDecoder } from 'node:string_decoder';
import type { Dispatcher } from 'undici';

/*
 * Many Server-Sent Events subscribers of one seat stream in one process, for the stream bench:
 * each is one undici request on a connection of its own, parses the wire format itself, keeps its
 * seat state (snapshot + changes) as one byte per seat and when each seq's message arrived
 * (performance.now(), the bench's clock). Every subscriber gets the same message for a seq, so it
 * is parsed once for all (`FrameCache`); a text that differs from the first one's is divergent.
 */

const MAX_RECONNECTS = 3;
const RECONNECT_DELAY_MS = 1_000;

type Sections = { name: string; available: number }[];
type Seat = { label: string; status: string };
const sectionMap = (list: Sections | undefined): Record<string, number> =>
  Object.fromEntries((list ?? []).map((s) => [s.name, s.available]));

export type ParsedSeats = ReturnType<FrameCache['parseSeats']>;
export type ParsedSnapshot = ReturnType<FrameCache['parseSnapshot']>;

/** The parsed messages and snapshots of one stream, shared by its subscribers. */
export class FrameCache {
  readonly seats = new Map<number, ParsedSeats>();
  private readonly snapshots = new Map<string, ParsedSnapshot>();
  /** The first snapshot any subscriber received. */
  firstSnapshot: ParsedSnapshot | null = null;
  /** Seat statuses by their code (255: never set); others are added as they come. */
  readonly statuses = ['free', 'held', 'booked'];
  private readonly index: Map<string, number>;

  constructor(readonly labels: readonly string[]) {
    this.index = new Map(labels.map((label, i) => [label, i]));
  }

  code(status: string): number {
    const code = this.statuses.indexOf(status);
    return code >= 0 ? code : this.statuses.push(status) - 1;
  }

  /** Per change its seat's index (-1: a label the seat map lacks) and status code. */
  parseSeats(text: string) {
    const data = JSON.parse(text) as { changes: Seat[]; sections: Sections };
    const changes = data.changes.map(({ label, status }) => {
      return { label, status, index: this.index.get(label) ?? -1, code: this.code(status) };
    });
    return { text, changes, sections: sectionMap(data.sections) };
  }

  /** The shared parse of seq's message; null when this text differs from the one cached. */
  seatsFor(seq: number, text: string): ParsedSeats | null {
    const known = this.seats.get(seq);
    if (known) return known.text === text ? known : null;
    const parsed = this.parseSeats(text);
    this.seats.set(seq, parsed);
    return parsed;
  }

  parseSnapshot(text: string) {
    const data = JSON.parse(text) as { seq: number; seats: Seat[]; sections: Sections };
    const state = new Uint8Array(this.labels.length).fill(255);
    let unknownLabels = 0;
    for (const seat of data.seats) {
      const i = this.index.get(seat.label);
      if (i === undefined) unknownLabels += 1;
      else state[i] = this.code(seat.status);
    }
    return { seq: data.seq, text, state, unknownLabels, sections: sectionMap(data.sections) };
  }

  snapshotFor(text: string): ParsedSnapshot {
    const parsed = this.snapshots.get(text) ?? this.parseSnapshot(text);
    // Snapshots repeat (every subscriber that opened before the first change gets the same one).
    if (this.snapshots.size < 64) this.snapshots.set(text, parsed);
    this.firstSnapshot ??= parsed;
    return parsed;
  }
}

export interface SubscriberOptions {
  origin: string;
  path: string;
  dispatcher: Dispatcher;
  cache: FrameCache;
  /** Initial size of the arrival table (seqs after the first snapshot); it grows. */
  expectedMessages: number;
}

/** One subscriber: its connection, its parser, what it received and the state it built. */
export class SseSubscriber {
  /** The state built from the snapshot and the changes (255 = never set). */
  state = new Uint8Array(0);
  sections: Record<string, number> = {};
  /** The seq applied last; -1 before the first snapshot. */
  seq = -1;
  firstSnapshotSeq = -1;
  snapshots = 0;
  seatsMessages = 0;
  /** A seats message whose seq is not the one after the last applied (a skip or a repeat). */
  gaps = 0;
  readonly gapSamples: string[] = [];
  divergent = 0;
  unknownLabels = 0;
  stale = 0;
  pings = 0;
  otherFrames = 0;
  bytes = 0;
  reconnects = 0;
  duplicates = 0;
  /** Unexpected ends and errors of the stream (the server closed it, a socket error, not 200). */
  readonly failures: string[] = [];
  /** Arrival time of each seq's message, from firstSnapshotSeq + 1; NaN: never. */
  private arrivals: Float64Array;
  private decoder = new StringDecoder('utf8');
  private buffer = '';
  private controller: { abort(reason?: Error): void } | null = null;
  private closing = false;
  private settle!: { resolve: () => void; reject: (error: Error) => void };
  readonly ready = new Promise<void>((resolve, reject) => (this.settle = { resolve, reject }));

  constructor(private readonly options: SubscriberOptions) {
    this.arrivals = new Float64Array(Math.max(16, options.expectedMessages)).fill(NaN);
    // A subscriber nobody awaits must not become an unhandled rejection.
    this.ready.catch(() => undefined);
  }

  connect(): void {
    // Reconnects send Last-Event-ID, as EventSource does.
    const resume = this.seq >= 0 ? { 'last-event-id': String(this.seq) } : {};
    [this.decoder, this.buffer] = [new StringDecoder('utf8'), ''];
    const { origin, path, dispatcher } = this.options;
    const headers = { accept: 'text/event-stream', ...resume };
    dispatcher.dispatch(
      { origin, path, method: 'GET', headers, headersTimeout: 120_000, bodyTimeout: 0 },
      {
        onRequestStart: (controller) => {
          this.controller = controller;
          if (this.closing) controller.abort(new Error('closed'));
        },
        onResponseStart: (controller, statusCode) => {
          if (statusCode === 200) return;
          this.fail(`status ${statusCode}`);
          controller.abort(new Error(`status ${statusCode}`));
        },
        onResponseData: (_controller, chunk) => this.take(chunk),
        onResponseEnd: () => this.ended('the server ended the stream'),
        onResponseError: (_controller, error) => this.ended(`error: ${error.message}`),
      },
    );
  }

  close(): void {
    this.closing = true;
    this.controller?.abort(new Error('closed'));
  }

  /** When seq's message arrived (ms), or NaN. */
  arrivalOf(seq: number): number {
    const slot = seq - this.firstSnapshotSeq - 1;
    return slot >= 0 && slot < this.arrivals.length ? this.arrivals[slot] : NaN;
  }

  private fail(reason: string): void {
    if (this.failures.length < 20) this.failures.push(reason);
    else this.failures[19] = `${reason} (and more)`;
  }

  private ended(reason: string): void {
    this.controller = null;
    if (this.closing) return;
    this.fail(reason);
    if (this.reconnects < MAX_RECONNECTS) {
      this.reconnects += 1;
      setTimeout(() => this.closing || this.connect(), RECONNECT_DELAY_MS);
    } else if (this.seq < 0) {
      this.settle.reject(new Error(`stream ended before its snapshot: ${reason}`));
    }
  }

  private take(chunk: Buffer): void {
    const now = performance.now();
    this.bytes += chunk.length;
    const text = this.buffer + this.decoder.write(chunk);
    let start = 0;
    for (let end = text.indexOf('\n\n'); end >= 0; end = text.indexOf('\n\n', start)) {
      this.frame(text.slice(start, end), now);
      start = end + 2;
    }
    this.buffer = text.slice(start);
  }

  /** One block of lines: a comment, or id / event / data fields. */
  private frame(block: string, now: number): void {
    if (block.startsWith(':')) return void (this.pings += 1);
    let [event, id, data] = ['message', '', null as string | null];
    for (const line of block.split('\n')) {
      const colon = line.indexOf(': ');
      const [field, value] = [line.slice(0, colon), line.slice(colon + 2)];
      if (field === 'data') data = data === null ? value : `${data}\n${value}`;
      else if (field === 'event') event = value;
      else if (field === 'id') id = value;
    }
    if (event === 'seats' && data !== null) this.seatsMessage(Number(id), data, now);
    else if (event === 'snapshot' && data !== null) this.snapshot(data);
    else if (event === 'stale') this.stale += 1;
    else this.otherFrames += 1;
  }

  private snapshot(data: string): void {
    const parsed = this.options.cache.snapshotFor(data);
    [this.state, this.sections] = [parsed.state.slice(), parsed.sections];
    this.unknownLabels += parsed.unknownLabels;
    this.seq = parsed.seq;
    this.snapshots += 1;
    if (this.firstSnapshotSeq >= 0) return;
    this.firstSnapshotSeq = parsed.seq;
    this.settle.resolve();
  }

  private gap(text: string): void {
    this.gaps += 1;
    if (this.gapSamples.length < 5) this.gapSamples.push(text);
  }

  private seatsMessage(seq: number, data: string, now: number): void {
    const { cache } = this.options;
    this.seatsMessages += 1;
    if (this.seq < 0) return this.gap(`seats ${seq} before any snapshot`);
    let parsed = cache.seatsFor(seq, data);
    if (!parsed) [this.divergent, parsed] = [this.divergent + 1, cache.parseSeats(data)];
    if (seq !== this.seq + 1) this.gap(`${this.seq} -> ${seq}`);
    for (const { index, code } of parsed.changes) {
      if (index < 0) this.unknownLabels += 1;
      else this.state[index] = code;
    }
    [this.sections, this.seq] = [parsed.sections, seq];
    const slot = seq - this.firstSnapshotSeq - 1;
    if (slot < 0) return;
    if (slot >= this.arrivals.length) {
      const grown = new Float64Array(Math.max(slot + 1, this.arrivals.length * 2)).fill(NaN);
      grown.set(this.arrivals);
      this.arrivals = grown;
    }
    if (Number.isNaN(this.arrivals[slot])) this.arrivals[slot] = now;
    else this.duplicates += 1;
  }
}
