import { createServer, type Server, type ServerResponse } from 'node:http';

/** One EventSource connection to the scripted stream: what it resumed after, and a pen. */
export interface ScriptedConnection {
  /** The Last-Event-ID the browser sent (absent on a first connection). */
  lastEventId: string | undefined;
  /** Writes one message: `event:`, `id:` when given, `data:` as JSON. */
  send(event: string, id: number | undefined, data: unknown): void;
  /** Drops the connection, as a restarting server would. */
  end(): void;
}

/**
 * A text/event-stream server whose messages the test writes one by one, for the page's side of the
 * seat-stream contract (snapshot, seats, stale, resume) in an order the test chooses. The browser is
 * pointed at it with a route that rewrites the stream's URL; the page still sees its own origin.
 */
export class ScriptedSeatStream {
  private readonly waiting: ((connection: ScriptedConnection) => void)[] = [];
  private readonly arrived: ScriptedConnection[] = [];
  private readonly open = new Set<ServerResponse>();

  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  /** `retryMs`: how soon EventSource reconnects after a dropped connection (the `retry:` field). */
  static async start(retryMs = 200): Promise<ScriptedSeatStream> {
    const server = createServer();
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
    const address = server.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    const stream = new ScriptedSeatStream(server, `http://127.0.0.1:${port}/stream`);
    server.on('request', (request, response) => {
      response.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      response.write(`retry: ${retryMs}\n\n`);
      stream.open.add(response);
      response.on('close', () => stream.open.delete(response));
      const header = request.headers['last-event-id'];
      stream.arrive({
        lastEventId: typeof header === 'string' ? header : undefined,
        send: (event, id, data) =>
          response.write(
            `event: ${event}\n${id === undefined ? '' : `id: ${id}\n`}data: ${JSON.stringify(data)}\n\n`,
          ),
        end: () => response.destroy(),
      });
    });
    return stream;
  }

  /** The next connection the browser makes (or made and nobody took yet). */
  nextConnection(): Promise<ScriptedConnection> {
    const ready = this.arrived.shift();
    if (ready) return Promise.resolve(ready);
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  async close(): Promise<void> {
    for (const response of this.open) response.destroy();
    await new Promise<void>((done) => this.server.close(() => done()));
  }

  private arrive(connection: ScriptedConnection): void {
    const taker = this.waiting.shift();
    if (taker) taker(connection);
    else this.arrived.push(connection);
  }
}
