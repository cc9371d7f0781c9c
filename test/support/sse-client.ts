import { Agent, request } from 'undici';

/** One Server-Sent Event as received: its `event`, `id` and parsed `data`. */
export interface SseEvent {
  event: string;
  id: string | null;
  data: any;
  at: number;
}

export interface SeatState {
  seq: number;
  seats: Map<string, string>;
  sections: Map<string, number>;
}

/**
 * A text/event-stream reader over real HTTP (undici): keeps every event and comment it received,
 * and lets a test wait for one. The test decides what to assert; this only parses the wire format.
 */
export class SseClient {
  readonly events: SseEvent[] = [];
  readonly comments: string[] = [];
  status = 0;
  headers: Record<string, string> = {};
  private buffer = '';
  private readonly abort = new AbortController();
  private readonly agent = new Agent({ connections: 1 });
  private waiters: (() => void)[] = [];
  private ended = false;
  private body = '';

  private constructor() {}

  /** Opens the stream; resolves once the status line and headers are in. */
  static async open(url: string, headers: Record<string, string> = {}): Promise<SseClient> {
    const client = new SseClient();
    const response = await request(url, {
      headers: { accept: 'text/event-stream', ...headers },
      dispatcher: client.agent,
      signal: client.abort.signal,
      bodyTimeout: 0,
    });
    client.status = response.statusCode;
    client.headers = Object.fromEntries(
      Object.entries(response.headers).map(([k, v]) => [k, String(v)]),
    );
    void (async () => {
      try {
        for await (const chunk of response.body) client.take(String(chunk));
      } catch {
        // Closed by us or by the server.
      }
      client.ended = true;
      client.wake();
    })();
    return client;
  }

  /** A non-200 answer's body, parsed (a problem+json). */
  async problem(): Promise<any> {
    await this.waitUntil(() => this.ended, 5000, 'the error body');
    return JSON.parse(this.body);
  }

  get closed(): boolean {
    return this.ended;
  }

  /** Waits until `test` holds for what has arrived, or fails after `timeoutMs`. */
  async waitUntil(test: () => boolean, timeoutMs: number, what: string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!test()) {
      const left = deadline - Date.now();
      if (left <= 0 || (this.ended && !test())) {
        if (test()) return;
        throw new Error(
          `SSE: timed out waiting for ${what}; got ${this.events.length} events` +
            (this.ended ? ' (stream ended)' : ''),
        );
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 200));
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Waits for the n-th event (1-based) of that kind. */
  async nth(event: string, n: number, timeoutMs = 5000): Promise<SseEvent> {
    await this.waitUntil(() => this.ofKind(event).length >= n, timeoutMs, `${n} × ${event}`);
    return this.ofKind(event)[n - 1];
  }

  ofKind(event: string): SseEvent[] {
    return this.events.filter((e) => e.event === event);
  }

  /** The highest seq seen so far (snapshot or seats), or null. */
  get lastSeq(): number | null {
    const withSeq = this.events.filter((e) => e.event === 'snapshot' || e.event === 'seats');
    return withSeq.length === 0 ? null : withSeq[withSeq.length - 1].data.seq;
  }

  /**
   * Applies what arrived as a client must: each snapshot replaces the state, each seats message
   * updates it; answers the state and whether the seqs ran without a gap after each snapshot.
   */
  state(): SeatState & { gaps: string[] } {
    const state: SeatState = { seq: 0, seats: new Map(), sections: new Map() };
    const gaps: string[] = [];
    for (const e of this.events) {
      if (e.event === 'snapshot') {
        state.seats = new Map(e.data.seats.map((s: any) => [s.label, s.status]));
        state.seq = e.data.seq;
      } else if (e.event === 'seats') {
        if (e.data.seq !== state.seq + 1) gaps.push(`${state.seq} → ${e.data.seq}`);
        for (const change of e.data.changes) state.seats.set(change.label, change.status);
        state.seq = e.data.seq;
      } else continue;
      state.sections = new Map(e.data.sections.map((s: any) => [s.name, s.available]));
    }
    return { ...state, gaps };
  }

  async close(): Promise<void> {
    this.abort.abort();
    await this.agent.destroy().catch(() => undefined);
  }

  private take(text: string): void {
    if (this.status !== 200) {
      this.body += text;
      return;
    }
    this.buffer += text;
    let end: number;
    while ((end = this.buffer.indexOf('\n\n')) >= 0) {
      const block = this.buffer.slice(0, end);
      this.buffer = this.buffer.slice(end + 2);
      let event = 'message';
      let id: string | null = null;
      const data: string[] = [];
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) this.comments.push(line.slice(1).trim());
        else if (line.startsWith('event: ')) event = line.slice(7);
        else if (line.startsWith('id: ')) id = line.slice(4);
        else if (line.startsWith('data: ')) data.push(line.slice(6));
      }
      if (data.length > 0) {
        this.events.push({ event, id, data: JSON.parse(data.join('\n')), at: Date.now() });
      }
    }
    this.wake();
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const waiter of waiters) waiter();
  }
}
