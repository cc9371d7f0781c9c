import { ApiProperty } from '@nestjs/swagger';
import { DeliveryAttemptDto } from './delivery-attempt.dto';

/** One event sent (or being sent) to a webhook endpoint, with every attempt. */
export class WebhookDeliveryDto {
  /** Delivery id (UUID). */
  id: string;

  /** The event's id: the body's `id` and the `Idempotency-Key` header of every attempt. */
  messageId: string;

  /** e.g. `booking.confirmed`. */
  eventType: string;

  /** `pending` (will be tried at nextAttemptAt), `delivered`, `dead` (gave up) or `cancelled`. */
  status: string;

  /** Attempts made so far. */
  attemptCount: number;

  nextAttemptAt: string | null;

  lastError: string | null;

  deliveredAt: string | null;

  createdAt: string;

  /** Every attempt, oldest first. */
  @ApiProperty({ type: [DeliveryAttemptDto] })
  attempts: DeliveryAttemptDto[];
}
