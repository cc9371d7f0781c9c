import { createServer, type Server } from 'node:http';
import { verifySignature } from '../../apps/gateway-sim/src/webhooks/webhook-signature';

export interface ReceivedWebhook {
  /** The event as parsed from the body. */
  event: any;
  /** The status this receiver answered. */
  status: number;
  validSignature: boolean;
  receivedAt: number;
}

/**
 * A real HTTP endpoint on a loopback port that records every webhook request, checks its signature
 * with `secret`, and answers whatever `respond` says (200 unless told otherwise).
 */
export class WebhookReceiver {
  readonly requests: ReceivedWebhook[] = [];
  respond: (event: any) => number = () => 200;

  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  static async start(secret: string): Promise<WebhookReceiver> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    const receiver = new WebhookReceiver(server, `http://127.0.0.1:${port}/webhook`);
    server.on('request', (request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        const raw = Buffer.concat(chunks);
        const event = JSON.parse(raw.toString());
        const header = request.headers['gateway-signature'];
        const status = receiver.respond(event);
        receiver.requests.push({
          event,
          status,
          validSignature: verifySignature(secret, raw, typeof header === 'string' ? header : ''),
          receivedAt: Date.now(),
        });
        response.writeHead(status).end();
      });
    });
    return receiver;
  }

  /** Requests whose event concerns `objectId` (an intent or a refund id). */
  about(objectId: string): ReceivedWebhook[] {
    return this.requests.filter(
      (r) => r.event.data.object.id === objectId || r.event.data.object.payment_intent === objectId,
    );
  }

  /** Waits until `predicate` holds for the requests so far; answers them. */
  async waitFor(
    predicate: (requests: ReceivedWebhook[]) => boolean,
    timeoutMs = 10_000,
  ): Promise<ReceivedWebhook[]> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate(this.requests)) {
      if (Date.now() > deadline) {
        throw new Error(
          `webhooks not received in ${timeoutMs} ms; got ${JSON.stringify(
            this.requests.map((r) => [r.event.type, r.event.data.object.id, r.status]),
          )}`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    return this.requests;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
