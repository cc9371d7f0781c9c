import { Agent, createServer, type IncomingMessage, request, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** Names the backend (its index) that answered, or that the proxy failed to reach. */
export const BACKEND_HEADER = 'x-proxy-backend';

/**
 * A plain round-robin HTTP reverse proxy on loopback in front of several instances of a server, a
 * load balancer that never retries: a backend that refuses or drops the connection is answered
 * 502, one silent for `timeoutMs` 504. Like nginx's passive health check (max_fails=1
 * fail_timeout=2s), a backend that just refused a connection is skipped for 2 s.
 */
export class RoundRobinProxy {
  /** Requests sent to each backend. */
  readonly counts: number[];
  private readonly downUntil: number[];
  private next = 0;
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 256, keepAliveMsecs: 1_000 });
  private readonly server = createServer((req, res) => this.forward(req, res));

  private constructor(
    private readonly ports: readonly number[],
    private readonly timeoutMs: number,
  ) {
    this.counts = ports.map(() => 0);
    this.downUntil = ports.map(() => 0);
    this.server.keepAliveTimeout = 30_000;
    this.server.headersTimeout = 35_000;
  }

  static async start(ports: readonly number[], timeoutMs = 30_000): Promise<RoundRobinProxy> {
    const proxy = new RoundRobinProxy(ports, timeoutMs);
    await new Promise<void>((resolve) => proxy.server.listen(0, '127.0.0.1', resolve));
    return proxy;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** The next backend in turn that did not just refuse a connection; if all did, the next one. */
  private pick(): number {
    const now = Date.now();
    const n = this.ports.length;
    const up = Array.from({ length: n }, (_, i) => (this.next + i) % n).find(
      (index) => this.downUntil[index] <= now,
    );
    const index = up ?? this.next % n;
    this.next = index + 1;
    return index;
  }

  private forward(req: IncomingMessage, res: ServerResponse): void {
    const index = this.pick();
    this.counts[index] += 1;
    const port = this.ports[index];
    let answered = false;
    const fail = (status: number): void => {
      if (answered) return;
      answered = true;
      if (res.headersSent) {
        res.destroy();
        return;
      }
      res.writeHead(status, {
        'content-type': 'application/problem+json',
        [BACKEND_HEADER]: String(index),
      });
      res.end(JSON.stringify({ status, title: 'proxy', detail: `backend ${index}` }));
    };
    const upstream = request(
      {
        ...{ host: '127.0.0.1', port, method: req.method, path: req.url, agent: this.agent },
        headers: { ...req.headers, host: `127.0.0.1:${port}` },
        timeout: this.timeoutMs,
      },
      (answer) => {
        answered = true;
        res.writeHead(answer.statusCode ?? 502, {
          ...answer.headers,
          [BACKEND_HEADER]: String(index),
        });
        answer.pipe(res);
        answer.on('error', () => res.destroy());
      },
    );
    upstream.on('timeout', () => {
      upstream.destroy();
      fail(504);
    });
    upstream.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'ECONNREFUSED') this.downUntil[index] = Date.now() + 2_000;
      fail(502);
    });
    res.on('close', () => {
      if (!res.writableFinished) upstream.destroy();
    });
    req.pipe(upstream);
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    this.agent.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
