import { ApiProperty } from '@nestjs/swagger';
import type { OutboxStatus } from '../outbox.repository';

/** An outbox message as operators see it. */
export class OutboxMessageDto {
  /** Message id (UUID); also the idempotency key of its deliveries. */
  id: string;

  /** e.g. `booking.held`, `payment.voided`. */
  topic: string;

  customerId: string | null;

  /** The booking it concerns. */
  aggregateId: string | null;

  /** pending: to dispatch (or retrying); sent: fanned out; dead: gave up after NOTIFY_MAX_ATTEMPTS. */
  @ApiProperty({ enum: ['pending', 'sent', 'dead'] })
  status: OutboxStatus;

  /** Failed dispatch attempts so far. */
  attempts: number;

  /** Not dispatched before this time (the retry backoff). */
  availableAt: string;

  /** Why the last attempt failed. */
  lastError: string | null;

  dispatchedAt: string | null;

  /** The instance (host:pid:id) that dispatched it. */
  dispatchedBy: string | null;

  createdAt: string;

  @ApiProperty({ type: 'object', additionalProperties: true })
  payload: Record<string, unknown>;
}
