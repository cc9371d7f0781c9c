import { Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import { InAppNotificationRepository } from './in-app-notification.repository';
import { NotificationMetrics } from './notification.metrics';
import { NotificationTemplates } from './notification-templates';
import type { ClaimedMessage, OutboxChannel } from './outbox-channel';

/**
 * The in-app channel: writing the notification row is the delivery, so it needs no worker of its
 * own. One row per message (message_id is unique); a repeated fan-out changes nothing and is counted.
 */
@Injectable()
export class InAppChannel implements OutboxChannel {
  readonly name = 'in_app';

  constructor(
    private readonly notifications: InAppNotificationRepository,
    private readonly metrics: NotificationMetrics,
  ) {}

  async fanOut(manager: EntityManager, message: ClaimedMessage): Promise<void> {
    if (!message.customerId) return;
    const rendered = NotificationTemplates.render(message.topic, message.payload);
    if (!rendered) return;
    const inserted = await this.notifications.insert(manager, {
      messageId: message.id,
      customerId: message.customerId,
      bookingId: rendered.bookingId,
      type: message.topic,
      title: rendered.title,
      body: rendered.body,
      createdAt: message.createdAt,
    });
    if (!inserted) this.metrics.duplicates.inc({ channel: this.name });
  }

  fanOutStatement(
    messages: readonly ClaimedMessage[],
    param: (value: unknown) => string,
  ): string | null {
    const rows = messages.flatMap((message) => {
      const rendered = message.customerId
        ? NotificationTemplates.render(message.topic, message.payload)
        : null;
      return rendered ? [{ messageId: message.id, ...rendered }] : [];
    });
    return rows.length > 0 ? this.notifications.insertBatchStatement(rows, param) : null;
  }
}
