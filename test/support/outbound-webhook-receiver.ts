import {
  createServer,
  type IncomingHttpHeaders,
  type Server,
  type ServerResponse,
} from 'node:http';
import { webhookSignatureProblem } from '../../apps/api/src/common/http/webhook-signature';

export interface OutboundWebhook {
  /** The parsed body: `{id, type, createdAt, data}`. */
  event: any;
  headers: IncomingHttpHeaders;
  idempotencyKey: string | undefined;
  /** The path after /hooks/ ('' for /hooks itself): which endpoint of this receiver was called. */
  endpoint: string;
  /** Why Seatlock-Signature does not sign the raw body with the receiver's secret; null when it does. */
  signatureProblem: string | null;
  /** What this receiver answered, or 'hang' when it never did. */
  answered: number | 'hang';
  /** Wall-clock milliseconds with sub-millisecond precision, comparable with PostgreSQL's clock. */
  receivedAt: number;
}

/**
 * A real HTTP server on a loopback port standing in for a customer's webhook endpoint: it records
 * every request, checks Seatlock-Signature with `secret` (set once the endpoint is created and its
 * secret is known), and answers what `respond` says: a status, or 'hang' to never answer.
 */
export class OutboundWebhookReceiver {
  readonly requests: OutboundWebhook[] = [];
  secret = '';
  /** Per-endpoint secrets, for one receiver standing in for many endpoints (`${url}/<endpoint>`). */
  readonly secrets = new Map<string, string>();
  respond: (event: any, index: number) => number | 'hang' = () => 200;
  private readonly hanging: ServerResponse[] = [];

  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  static async start(): Promise<OutboundWebhookReceiver> {
    const server = createServer();
    server.keepAliveTimeout = 60_000;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    const receiver = new OutboundWebhookReceiver(server, `http://127.0.0.1:${port}/hooks`);
    server.on('request', (request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        const raw = Buffer.concat(chunks);
        const event = JSON.parse(raw.toString());
        const header = request.headers['seatlock-signature'];
        const answered = receiver.respond(event, receiver.requests.length);
        const key = request.headers['idempotency-key'];
        const endpoint = (request.url ?? '').replace(/^\/hooks\/?/, '');
        receiver.requests.push({
          event,
          headers: request.headers,
          idempotencyKey: typeof key === 'string' ? key : undefined,
          endpoint,
          signatureProblem: webhookSignatureProblem(
            receiver.secrets.get(endpoint) ?? receiver.secret,
            raw,
            typeof header === 'string' ? header : undefined,
          ),
          answered,
          receivedAt: performance.timeOrigin + performance.now(),
        });
        if (answered === 'hang') receiver.hanging.push(response);
        else response.writeHead(answered).end();
      });
    });
    return receiver;
  }

  /** Forgets the requests so far (a benchmark's warm-up, say). */
  reset(): void {
    this.requests.length = 0;
  }

  /** Distinct Idempotency-Keys seen, and how many requests repeated one. */
  keys(): { distinct: number; duplicates: number } {
    const distinct = new Set(this.requests.map((r) => r.idempotencyKey)).size;
    return { distinct, duplicates: this.requests.length - distinct };
  }

  /** Waits until `predicate` holds for the requests so far; answers them. */
  async waitFor(
    what: string,
    predicate: (requests: OutboundWebhook[]) => boolean,
    timeoutMs = 15_000,
  ): Promise<OutboundWebhook[]> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate(this.requests)) {
      if (Date.now() > deadline) {
        throw new Error(
          `${what}: not seen in ${timeoutMs} ms; got ${JSON.stringify(
            this.requests.slice(0, 20).map((r) => [r.event.type, r.event.id, r.answered]),
          )} (${this.requests.length} requests)`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    return this.requests;
  }

  async close(): Promise<void> {
    for (const response of this.hanging) response.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
