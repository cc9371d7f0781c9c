import { Logger } from '@nestjs/common';
import { Client } from 'pg';

const RECONNECT_DELAY_MS = 1000;

/**
 * A dedicated PostgreSQL connection that LISTENs on one channel (a pooled connection cannot: LISTEN
 * belongs to the session), so background work is woken by the commits that make it, not by polling.
 * It reconnects after any failure and calls `onWake` on each loss and (re)connect too, since
 * notifications sent while it was away are lost; `listening` says whether it is connected now (the
 * owner polls while it is not).
 */
export class PgListener {
  private readonly logger = new Logger(PgListener.name);
  private client: Client | null = null;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  private up = false;

  constructor(
    private readonly databaseUrl: string,
    private readonly channel: string,
    private readonly onWake: () => void,
  ) {}

  /** Whether the LISTEN connection is up (notifications are arriving). */
  get listening(): boolean {
    return this.up;
  }

  start(): void {
    this.stopped = false;
    void this.connect();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.up = false;
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
      this.up = false;
      if (this.client === client) this.client = null;
      void client.end().catch(() => undefined);
      if (this.stopped) return;
      this.logger.warn(
        { err: error },
        `LISTEN ${this.channel} connection lost; polling until it is back`,
      );
      this.timer = setTimeout(() => void this.connect(), RECONNECT_DELAY_MS);
      // The owner's next round sees `listening` false and plans its poll.
      this.onWake();
    };
    client.on('error', reconnect);
    client.on('end', () => reconnect());
    client.on('notification', () => this.onWake());
    try {
      await client.connect();
      await client.query(`LISTEN ${this.channel}`);
      if (this.stopped) return void (await client.end().catch(() => undefined));
      this.up = true;
      this.onWake();
    } catch (error) {
      reconnect(error as Error);
    }
  }
}
