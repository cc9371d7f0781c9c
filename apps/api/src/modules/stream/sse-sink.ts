import type { ServerResponse } from 'node:http';

/** One text/event-stream response: frames written as they come, closed by either side. */
export class SseSink {
  private closed = false;

  constructor(private readonly response: ServerResponse) {}

  /** Starts the stream: 200 and the event-stream headers (with those already set, e.g. X-Request-Id). */
  open(headers: Record<string, string | number | string[] | undefined>): void {
    this.response.writeHead(200, {
      ...headers,
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      // Proxies such as nginx would otherwise hold the frames back.
      'x-accel-buffering': 'no',
    });
    this.response.once('close', () => (this.closed = true));
  }

  get isClosed(): boolean {
    return this.closed || this.response.destroyed;
  }

  /** Bytes written but not yet taken by the client. */
  get backlog(): number {
    return this.response.writableLength;
  }

  write(frame: string | Buffer): void {
    if (!this.isClosed) this.response.write(frame);
  }

  onClose(handler: () => void): void {
    if (this.isClosed) handler();
    else this.response.once('close', handler);
  }

  close(): void {
    if (!this.isClosed) this.response.end();
  }
}
