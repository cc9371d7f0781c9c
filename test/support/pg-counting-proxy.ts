import { connect, createServer, type Server, type Socket } from 'node:net';
import { freePort } from './redis-server';

export interface WireCounts {
  /** Statements executed: simple-protocol queries plus extended-protocol Executes. */
  statements: number;
  /** Round trips the client waited for: simple queries plus Syncs. */
  roundTrips: number;
  /** Client connections opened through the proxy. */
  connections: number;
}

const SSL_REQUEST = 80877103;
const GSSENC_REQUEST = 80877104;

/**
 * A loopback TCP proxy in front of PostgreSQL that counts what clients send, by reading the
 * frontend half of the wire protocol: every `Q` (simple query) and `E` (Execute) is a statement,
 * every `Q` and `S` (Sync) a round trip. Backend bytes pass through untouched. Point an API's
 * DATABASE_URL at `urlFor(...)` to count the statements a request costs, background work included.
 */
export class PgCountingProxy {
  private readonly sockets = new Set<Socket>();
  private totals: WireCounts = { statements: 0, roundTrips: 0, connections: 0 };
  /** With `logStatements`, the SQL of every statement run through the proxy, in order. */
  private readonly executed: string[] = [];

  private constructor(
    private readonly server: Server,
    readonly port: number,
    private readonly logStatements: boolean,
  ) {}

  static async start(
    targetHost: string,
    targetPort: number,
    options: { logStatements?: boolean } = {},
  ): Promise<PgCountingProxy> {
    const port = await freePort();
    const server = createServer();
    const proxy = new PgCountingProxy(server, port, options.logStatements ?? false);
    server.on('connection', (client) => proxy.relay(client, targetHost, targetPort));
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    return proxy;
  }

  /** `databaseUrl` with its host and port replaced by the proxy's. */
  urlFor(databaseUrl: string): string {
    const url = new URL(databaseUrl);
    url.hostname = '127.0.0.1';
    url.port = String(this.port);
    return url.toString();
  }

  /** The SQL of the statements run since `from` (an earlier `statementLog().length`). */
  statementLog(from = 0): string[] {
    return this.executed.slice(from);
  }

  counts(): WireCounts {
    return { ...this.totals };
  }

  private relay(client: Socket, host: string, port: number): void {
    this.totals.connections += 1;
    const upstream = connect({ host, port });
    for (const socket of [client, upstream]) {
      // No Nagle: a relayed small write must not wait for the peer's delayed ACK (up to 40 ms).
      socket.setNoDelay(true);
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
      socket.on('error', () => socket.destroy());
    }
    let pending: Buffer = Buffer.alloc(0);
    let started = false;
    // The text of the last Parse on this connection: what its next Execute runs.
    let parsed = '';
    client.on('data', (chunk: Buffer) => {
      upstream.write(chunk);
      pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
      for (;;) {
        // Start-up messages carry no type byte: length, then a code or the protocol version.
        const header = started ? 5 : 8;
        if (pending.length < header) break;
        const length = started ? pending.readInt32BE(1) + 1 : pending.readInt32BE(0);
        if (pending.length < length) break;
        if (!started) {
          const code = pending.readInt32BE(4);
          started = code !== SSL_REQUEST && code !== GSSENC_REQUEST;
        } else {
          const type = String.fromCharCode(pending[0]);
          this.count(type);
          if (this.logStatements) {
            if (type === 'P') parsed = queryOfParse(pending.subarray(5, length));
            if (type === 'E') this.executed.push(parsed);
            if (type === 'Q') this.executed.push(cString(pending, 5));
          }
        }
        pending = pending.subarray(length);
      }
    });
    upstream.pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  }

  private count(type: string): void {
    if (type === 'Q') {
      this.totals.statements += 1;
      this.totals.roundTrips += 1;
    } else if (type === 'E') {
      this.totals.statements += 1;
    } else if (type === 'S') {
      this.totals.roundTrips += 1;
    }
  }

  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** A NUL-terminated string of a protocol message, from `offset`. */
function cString(message: Buffer, offset: number): string {
  const end = message.indexOf(0, offset);
  return message.toString('utf8', offset, end < 0 ? message.length : end);
}

/** Parse: the statement's name, then its query text. */
function queryOfParse(body: Buffer): string {
  const nameEnd = body.indexOf(0);
  return cString(body, nameEnd + 1);
}
