import { Injectable, Logger, type OnModuleDestroy } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { createRedisClient } from '@app/lock';
import { AppConfigService } from '../../config/app-config.service';
import type { StreamMessage } from './seat-stream.repository';

/** Appends a message to the event's history (its seq as the entry id) and publishes it. */
const PUBLISH_SCRIPT = `
local ok = pcall(redis.call, 'XADD', KEYS[1], 'MAXLEN', ARGV[3], ARGV[1] .. '-0', 'm', ARGV[2])
if not ok then return 0 end
redis.call('PUBLISH', KEYS[1], ARGV[2])
return 1
`;

function streamKey(eventId: string): string {
  return `seatstream:{event:${eventId}}`;
}

export interface BusListener {
  message(message: StreamMessage): void;
  /** The subscriber connection is down (messages may be missed) or back (resubscribed). */
  connection(up: boolean): void;
}

/**
 * Carries the stream's messages between instances: one Redis channel and one capped Redis stream
 * (the history resumes are served from) per event, on the first Redis node. With LOCK_MODE=off
 * there is no Redis: messages go straight to this instance's listener, history is empty.
 */
@Injectable()
export class SeatStreamBus implements OnModuleDestroy {
  private readonly logger = new Logger(SeatStreamBus.name);
  private readonly url: string | null;
  /** Messages a resume can be served from, per event; older ones mean a new snapshot. */
  private readonly historyLength: number;
  private publisher: Redis | null = null;
  private subscriber: Redis | null = null;
  private listener: BusListener | null = null;
  private up = false;

  constructor(config: AppConfigService) {
    this.historyLength = config.get('STREAM_HISTORY');
    const mode = config.get('LOCK_MODE');
    this.url =
      mode === 'off'
        ? null
        : mode === 'redlock'
          ? (config.get('REDIS_URLS') ?? '').split(',')[0].trim()
          : config.get('REDIS_URL');
  }

  /** Local delivery only (no Redis): every instance sees only its own changes. */
  get local(): boolean {
    return this.url === null;
  }

  /** Whether messages from other instances are arriving now. */
  get connected(): boolean {
    return this.local || this.up;
  }

  listen(listener: BusListener): void {
    this.listener = listener;
    if (this.local) return;
    const options = {
      maxRetriesPerRequest: 1,
      enableOfflineQueue: false,
      retryStrategy: () => 500,
      lazyConnect: false,
    };
    this.publisher = createRedisClient(this.url as string, options);
    this.publisher.on('error', () => undefined);
    // Subscriptions are restored by ioredis after a reconnect; 'ready' says they are back.
    this.subscriber = createRedisClient(this.url as string, {
      ...options,
      enableOfflineQueue: true,
    });
    this.subscriber.on('error', () => undefined);
    this.subscriber.on('ready', () => this.setUp(true));
    this.subscriber.on('close', () => this.setUp(false));
    this.subscriber.on('message', (_channel: string, text: string) => {
      try {
        this.listener?.message(JSON.parse(text) as StreamMessage);
      } catch (error) {
        this.logger.warn({ err: error }, 'Unreadable seat stream message dropped');
      }
    });
  }

  async subscribe(eventId: string): Promise<void> {
    await this.subscriber?.subscribe(streamKey(eventId));
  }

  async unsubscribe(eventId: string): Promise<void> {
    await this.subscriber?.unsubscribe(streamKey(eventId)).catch(() => undefined);
  }

  /** Publishes in order; false when Redis could not take them (listeners will see the gap). */
  async publish(messages: readonly StreamMessage[]): Promise<boolean> {
    if (this.local) {
      for (const message of messages) this.listener?.message(message);
      return true;
    }
    if (!this.publisher || messages.length === 0) return true;
    try {
      const pipeline = this.publisher.pipeline();
      for (const message of messages) {
        pipeline.eval(
          PUBLISH_SCRIPT,
          1,
          streamKey(message.eventId),
          String(message.seq),
          JSON.stringify(message),
          String(this.historyLength),
        );
      }
      const results = (await pipeline.exec()) ?? [];
      return results.every(([error]) => !error);
    } catch (error) {
      this.logger.warn({ err: error }, 'Seat stream messages not published');
      return false;
    }
  }

  /**
   * The event's messages after `afterSeq`, oldest first, as far as the history still has them;
   * null when it cannot be read (Redis down, or no Redis).
   */
  async history(eventId: string, afterSeq: number): Promise<StreamMessage[] | null> {
    if (!this.publisher || !this.up) return null;
    try {
      const entries = await this.publisher.xrange(
        streamKey(eventId),
        `${afterSeq + 1}-0`,
        '+',
        'COUNT',
        this.historyLength,
      );
      return entries.map(([, fields]) => JSON.parse(fields[1]) as StreamMessage);
    } catch {
      return null;
    }
  }

  async onModuleDestroy(): Promise<void> {
    this.listener = null;
    this.subscriber?.disconnect();
    this.publisher?.disconnect();
  }

  private setUp(up: boolean): void {
    if (this.up === up) return;
    this.up = up;
    this.listener?.connection(up);
  }
}
