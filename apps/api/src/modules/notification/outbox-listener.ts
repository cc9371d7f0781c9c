import { Logger } from '@nestjs/common';
import { Client } from 'pg';

/** The LISTEN/NOTIFY channel that NotificationService.enqueue notifies on commit. */
export const OUTBOX_CHANNEL = 'outbox';

const RECONNECT_DELAY_MS = 1000;

/**
 * A dedicated PostgreSQL connection that LISTENs for new outbox messages (a pooled connection cannot:
 * LISTEN belongs to the session). It reconnects after any failure and calls `onWake` after each
 * (re)connect too, since notifications sent while it was away are lost; the poll is the safety net.
 */
export class OutboxListener {
  private readonly logger = new Logger(OutboxListener.name);
  private client: Client | null = null;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(
    private readonly databaseUrl: string,
    private readonly onWake: () => void,
    /** The delivery worker listens on DELIVERY_CHANNEL with the same machinery. */
    private readonly channel: string = OUTBOX_CHANNEL,
  ) {}

  start(): void {
    this.stopped = false;
    void this.connect();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    const client = this.client;
    this.client = null;
    await client?.end().catch(() => undefined);
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    const client = new Client({
      connectionString: this.databaseUrl,
      connectionTimeoutMillis: 5000,
    });
    this.client = client;
    let lost = false;
    const reconnect = (error?: Error): void => {
      if (lost) return;
      lost = true;
      if (this.client === client) this.client = null;
      void client.end().catch(() => undefined);
      if (this.stopped) return;
      this.logger.warn(
        { err: error },
        `LISTEN ${this.channel} connection lost; polling until it is back`,
      );
      this.timer = setTimeout(() => void this.connect(), RECONNECT_DELAY_MS);
    };
    client.on('error', reconnect);
    client.on('end', () => reconnect());
    client.on('notification', () => this.onWake());
    try {
      await client.connect();
      await client.query(`LISTEN ${this.channel}`);
      if (this.stopped) return void (await client.end().catch(() => undefined));
      this.onWake();
    } catch (error) {
      reconnect(error as Error);
    }
  }
}
