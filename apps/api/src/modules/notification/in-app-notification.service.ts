import { Injectable } from '@nestjs/common';
import type { AuthenticatedCustomer } from '../../common/auth/auth.decorators';
import type { Page } from '../../common/pagination/page';
import type { NotificationDto } from './dto/notification.dto';
import type { NotificationQueryDto } from './dto/notification-query.dto';
import { InAppNotificationRepository } from './in-app-notification.repository';
import { NotificationError } from './notification.errors';

/** The customer's in-app notifications: reading them and marking them read. */
@Injectable()
export class InAppNotificationService {
  constructor(private readonly notifications: InAppNotificationRepository) {}

  list(
    customer: AuthenticatedCustomer,
    query: NotificationQueryDto,
  ): Promise<Page<NotificationDto>> {
    return this.notifications.list(customer.id, query.unread === true, query.limit, query.offset);
  }

  /** Sets readAt once; marking it again keeps the first time. Another customer's is 404. */
  async markRead(customer: AuthenticatedCustomer, id: string): Promise<NotificationDto> {
    const notification = await this.notifications.markRead(customer.id, id);
    if (!notification) throw NotificationError.notFound(id);
    return notification;
  }
}
