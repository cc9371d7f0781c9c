import { StringDecoder } from 'node:string_decoder';
import type { Dispatcher } from 'undici';

/*
 * Many Server-Sent Events subscribers of one seat stream in one process, for the stream bench:
 * each is one undici request on a connection of its own (Dispatcher.dispatch, no body stream),
 * parses the wire format itself, keeps the seat state it built (snapshot + changes) as one byte
 * per seat, and the time each `seats` message arrived, by seq. Every subscriber receives the same
 * message for a seq, so a message's JSON is parsed once for all of them (`FrameCache`); a
 * subscriber whose text for a seq differs from the first one's is counted as divergent.
 */

/** Seat statuses as small numbers (free 0, held 1, booked 2, others as they come). */
export class StatusCodes {
  private readonly codes = new Map<string, number>([
    ['free', 0],
    ['held', 1],
    ['booked', 2],
  ]);
  private readonly names = ['free', 'held', 'booked'];

  code(status: string): number {
    let code = this.codes.get(status);
    if (code === undefined) {
      code = this.names.length;
      this.codes.set(status, code);
      this.names.push(status);
    }
    return code;
  }

  name(code: number): string {
    return this.names[code] ?? `?${code}`;
  }
}

export interface ParsedSeats {
  seq: number;
  text: string;
  /** [seat index, status code] per change; index -1: a label the seat map does not have. */
  changes: [number, number][];
  /** The changes as sent (labels and statuses), for the latency mapping. */
  raw: { label: string; status: string }[];
  sections: Record<string, number>;
}

export interface ParsedSnapshot {
  seq: number;
  text: string;
  state: Uint8Array;
  unknownLabels: number;
  sections: Record<string, number>;
}

/** The parsed messages and snapshots of one stream, shared by its subscribers. */
export class FrameCache {
  readonly seats = new Map<number, ParsedSeats>();
  private readonly snapshots = new Map<string, ParsedSnapshot>();
  /** The first snapshot any subscriber received. */
  firstSnapshot: ParsedSnapshot | null = null;
  readonly index: Map<string, number>;

  constructor(
    readonly labels: readonly string[],
    readonly statuses: StatusCodes,
  ) {
    this.index = new Map(labels.map((label, i) => [label, i]));
  }

  private sections(list: { name: string; available: number }[]): Record<string, number> {
    return Object.fromEntries((list ?? []).map((s) => [s.name, s.available]));
  }

  parseSeats(seq: number, text: string): ParsedSeats {
    const data = JSON.parse(text) as {
      seq: number;
      changes: { label: string; status: string }[];
      sections: { name: string; available: number }[];
    };
    return {
      seq: data.seq ?? seq,
      text,
      changes: data.changes.map((c) => [
        this.index.get(c.label) ?? -1,
        this.statuses.code(c.status),
      ]),
      raw: data.changes.map(({ label, status }) => ({ label, status })),
      sections: this.sections(data.sections),
    };
  }

  /** The shared parse of seq's message; null when this text differs from the one cached. */
  seatsFor(seq: number, text: string): ParsedSeats | null {
    const known = this.seats.get(seq);
    if (known) return known.text === text ? known : null;
    const parsed = this.parseSeats(seq, text);
    this.seats.set(seq, parsed);
    return parsed;
  }

  snapshotFor(text: string): ParsedSnapshot {
    const known = this.snapshots.get(text);
    if (known) return known;
    const data = JSON.parse(text) as {
      seq: number;
      seats: { label: string; status: string }[];
      sections: { name: string; available: number }[];
    };
    const state = new Uint8Array(this.labels.length).fill(255);
    let unknownLabels = 0;
    for (const seat of data.seats) {
      const i = this.index.get(seat.label);
      if (i === undefined) unknownLabels += 1;
      else state[i] = this.statuses.code(seat.status);
    }
    const parsed = {
      seq: data.seq,
      text,
      state,
      unknownLabels,
      sections: this.sections(data.sections),
    };
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
  /** The clock arrivals are stamped with (ms). */
  clock: () => number;
  /** Reconnect (with Last-Event-ID, as EventSource does) after an unexpected end, up to this. */
  maxReconnects: number;
  reconnectDelayMs: number;
  /** Initial size of the arrival table (seqs after the first snapshot); it grows. */
  expectedMessages: number;
}

/** One subscriber: its connection, its parser, what it received and the state it built. */
export class SseSubscriber {
  status = 0;
  /** The state built from the snapshot and the changes (255 = never set). */
  state: Uint8Array = new Uint8Array(0);
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
  /** Unexpected ends and errors of the stream (the server closed it, a socket error, not 200). */
  readonly failures: string[] = [];
  /** Arrival time (ms, `clock`) of each seq's message, from firstSnapshotSeq + 1; NaN: never. */
  arrivals: Float64Array;
  duplicates = 0;
  private decoder = new StringDecoder('utf8');
  private buffer = '';
  private controller: { abort(reason?: Error): void } | null = null;
  private closing = false;
  private readyResolve!: () => void;
  private readyReject!: (error: Error) => void;
  readonly ready: Promise<void>;

  constructor(private readonly options: SubscriberOptions) {
    this.arrivals = new Float64Array(Math.max(16, options.expectedMessages)).fill(NaN);
    this.ready = new Promise((resolve, reject) => {
      this.readyResolve = resolve;
      this.readyReject = reject;
    });
    // A subscriber nobody awaits must not become an unhandled rejection.
    this.ready.catch(() => undefined);
  }

  connect(): void {
    const headers: Record<string, string> = { accept: 'text/event-stream' };
    if (this.seq >= 0) headers['last-event-id'] = String(this.seq);
    this.decoder = new StringDecoder('utf8');
    this.buffer = '';
    const handler: Dispatcher.DispatchHandler = {
      onRequestStart: (controller) => {
        this.controller = controller;
        if (this.closing) controller.abort(new Error('closed'));
      },
      onResponseStart: (controller, statusCode) => {
        this.status = statusCode;
        if (statusCode !== 200) {
          this.fail(`status ${statusCode}`);
          controller.abort(new Error(`status ${statusCode}`));
        }
      },
      onResponseData: (_controller, chunk) => this.take(chunk),
      onResponseEnd: () => this.ended('the server ended the stream'),
      onResponseError: (_controller, error) => this.ended(`error: ${error.message}`),
    };
    this.options.dispatcher.dispatch(
      {
        origin: this.options.origin,
        path: this.options.path,
        method: 'GET',
        headers,
        headersTimeout: 120_000,
        bodyTimeout: 0,
      },
      handler,
    );
  }

  close(): void {
    this.closing = true;
    this.controller?.abort(new Error('closed'));
  }

  private fail(reason: string): void {
    if (this.failures.length < 20) this.failures.push(reason);
    else this.failures[19] = `${reason} (and more)`;
  }

  private ended(reason: string): void {
    this.controller = null;
    if (this.closing) return;
    this.fail(reason);
    if (this.seq < 0 && this.reconnects >= this.options.maxReconnects) {
      this.readyReject(new Error(`stream ended before its snapshot: ${reason}`));
      return;
    }
    if (this.reconnects < this.options.maxReconnects) {
      this.reconnects += 1;
      setTimeout(() => {
        if (!this.closing) this.connect();
      }, this.options.reconnectDelayMs);
    }
  }

  private take(chunk: Buffer): void {
    const now = this.options.clock();
    this.bytes += chunk.length;
    const text = this.buffer + this.decoder.write(chunk);
    let start = 0;
    let end: number;
    while ((end = text.indexOf('\n\n', start)) >= 0) {
      this.frame(text, start, end, now);
      start = end + 2;
    }
    this.buffer = start === 0 ? text : text.slice(start);
  }

  /** One block of lines (text[start, end)): a comment, or id / event / data fields. */
  private frame(text: string, start: number, end: number, now: number): void {
    if (text.charCodeAt(start) === 58 /* ':' */) {
      this.pings += 1;
      return;
    }
    let event = 'message';
    let id: string | null = null;
    let data: string | null = null;
    let lineStart = start;
    while (lineStart < end) {
      let lineEnd = text.indexOf('\n', lineStart);
      if (lineEnd < 0 || lineEnd > end) lineEnd = end;
      if (text.startsWith('data: ', lineStart)) {
        const value = text.slice(lineStart + 6, lineEnd);
        data = data === null ? value : `${data}\n${value}`;
      } else if (text.startsWith('event: ', lineStart)) {
        event = text.slice(lineStart + 7, lineEnd);
      } else if (text.startsWith('id: ', lineStart)) {
        id = text.slice(lineStart + 4, lineEnd);
      }
      lineStart = lineEnd + 1;
    }
    if (event === 'seats' && data !== null) this.seats(Number(id), data, now);
    else if (event === 'snapshot' && data !== null) this.snapshot(data);
    else if (event === 'stale') this.stale += 1;
    else this.otherFrames += 1;
  }

  private snapshot(data: string): void {
    const parsed = this.options.cache.snapshotFor(data);
    this.state = parsed.state.slice();
    this.sections = parsed.sections;
    this.unknownLabels += parsed.unknownLabels;
    this.seq = parsed.seq;
    this.snapshots += 1;
    if (this.firstSnapshotSeq < 0) {
      this.firstSnapshotSeq = parsed.seq;
      this.readyResolve();
    }
  }

  private seats(seq: number, data: string, now: number): void {
    this.seatsMessages += 1;
    if (this.seq < 0) {
      this.gaps += 1;
      if (this.gapSamples.length < 5) this.gapSamples.push(`seats ${seq} before any snapshot`);
      return;
    }
    let parsed = this.options.cache.seatsFor(seq, data);
    if (!parsed) {
      this.divergent += 1;
      parsed = this.options.cache.parseSeats(seq, data);
    }
    if (seq !== this.seq + 1) {
      this.gaps += 1;
      if (this.gapSamples.length < 5) this.gapSamples.push(`${this.seq} -> ${seq}`);
    }
    for (const [index, code] of parsed.changes) {
      if (index < 0) this.unknownLabels += 1;
      else this.state[index] = code;
    }
    this.sections = parsed.sections;
    this.seq = seq;
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

  /** When seq's message arrived (ms), or NaN. */
  arrivalOf(seq: number): number {
    const slot = seq - this.firstSnapshotSeq - 1;
    return slot >= 0 && slot < this.arrivals.length ? this.arrivals[slot] : NaN;
  }
}
