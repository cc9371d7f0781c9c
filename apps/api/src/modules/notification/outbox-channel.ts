import type { EntityManager } from 'typeorm';

/** An outbox message as a dispatcher claimed it. */
export interface ClaimedMessage {
  id: string;
  topic: string;
  customerId: string | null;
  aggregateId: string | null;
  payload: Record<string, unknown>;
  attempts: number;
  createdAt: Date;
}

/**
 * One way of reaching the customer. The dispatcher calls every channel's `fanOut` in ONE transaction
 * that also marks the message dispatched, so a message is fanned out entirely or not at all. A channel
 * only writes rows there: in-app writes the notification itself; channels that talk to the outside
 * world (webhooks, email) are meant to write one delivery row per target, sent later by their own
 * worker with their own attempts, backoff and dead letter, so a slow receiver never holds the outbox.
 * Must be idempotent per message (a lost lease can fan a message out twice).
 */
export interface OutboxChannel {
  readonly name: string;
  fanOut(manager: EntityManager, message: ClaimedMessage): Promise<void>;
  /**
   * The same fan-out for a whole batch, as one data-modifying CTE (or null: nothing to write) that
   * the dispatcher joins into ONE statement with the others. It reads the messages still claimed
   * from the CTE `sent` (id, topic, customer_id, created_at) and binds values through `param`,
   * which answers the placeholder (`$n`) of each value it is given.
   */
  fanOutStatement(
    messages: readonly ClaimedMessage[],
    param: (value: unknown) => string,
  ): string | null;
  /**
   * Channels that write notification_deliveries rows (webhook, email) also send them: the delivery
   * worker calls this for each due row whose `channel` is this channel's name, outside any
   * transaction, and records the outcome (attempts, backoff, dead letter). Must not throw for a
   * receiver's failure: answer `delivered: false` with what went wrong.
   */
  send?(
    delivery: DueDelivery,
    message: ClaimedMessage,
    signal: AbortSignal,
  ): Promise<DeliveryOutcome>;
}

/** A notification_deliveries row the worker claimed. */
export interface DueDelivery {
  id: string;
  messageId: string;
  channel: string;
  /** The URL of a webhook endpoint, an email address, … */
  target: string;
  endpointId: string | null;
  /** Attempts before this one. */
  attempts: number;
}

export interface DeliveryOutcome {
  delivered: boolean;
  /** The receiver's answer (HTTP status, SMTP reply code), when there was one. */
  statusCode?: number;
  error?: string;
  latencyMs: number;
  /** The target asked never to be sent to again (a webhook answering 410): stop, no retries. */
  gone?: boolean;
}

/** Nest token of the OutboxChannel[] the dispatcher fans out to. */
export const OUTBOX_CHANNELS = Symbol('OUTBOX_CHANNELS');
