import { DomainError } from '../../common/errors/domain.error';
import type { OutboxStatus } from './outbox.repository';

/** Coded failures of the notification module. */
export class NotificationError extends DomainError {
  static notFound(id: string): NotificationError {
    return new NotificationError(
      'NOTIFICATION.NOT_FOUND',
      404,
      'Notification not found',
      `No notification ${id}`,
    );
  }

  static outboxMessageNotFound(id: string): NotificationError {
    return new NotificationError(
      'OUTBOX.NOT_FOUND',
      404,
      'Outbox message not found',
      `No outbox message ${id}`,
    );
  }

  static notDead(id: string, status: OutboxStatus): NotificationError {
    return new NotificationError(
      'OUTBOX.NOT_DEAD',
      409,
      'Outbox message is not dead',
      `Outbox message ${id} is ${status}; only dead messages can be retried`,
      { currentStatus: status },
    );
  }
}
