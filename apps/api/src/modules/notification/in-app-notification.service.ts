import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import type { AuthenticatedCustomer } from '../../common/auth/auth.decorators';
import type { Page } from '../../common/pagination/page';
import { NotificationDto } from './dto/notification.dto';
import type { NotificationQueryDto } from './dto/notification-query.dto';
import { NotificationError } from './notification.errors';

interface NotificationRow {
  id: string;
  type: string;
  booking_id: string | null;
  title: string;
  body: string;
  created_at: Date;
  read_at: Date | null;
}

const COLUMNS = 'id, type, booking_id, title, body, created_at, read_at';

function toDto(row: NotificationRow): NotificationDto {
  return {
    id: row.id,
    type: row.type,
    bookingId: row.booking_id,
    title: row.title,
    body: row.body,
    createdAt: row.created_at.toISOString(),
    readAt: row.read_at?.toISOString() ?? null,
  };
}

/** The customer's in-app notifications: reading them and marking them read. */
@Injectable()
export class InAppNotificationService {
  constructor(private readonly dataSource: DataSource) {}

  async list(
    customer: AuthenticatedCustomer,
    query: NotificationQueryDto,
  ): Promise<Page<NotificationDto>> {
    const where = `customer_id = $1${query.unread ? ' AND read_at IS NULL' : ''}`;
    const [rows, [{ total }]] = await Promise.all([
      this.dataSource.query<NotificationRow[]>(
        `SELECT ${COLUMNS} FROM notifications WHERE ${where}
         ORDER BY created_at DESC, id LIMIT $2 OFFSET $3`,
        [customer.id, query.limit, query.offset],
      ),
      this.dataSource.query<{ total: number }[]>(
        `SELECT count(*)::int AS total FROM notifications WHERE ${where}`,
        [customer.id],
      ),
    ]);
    return { items: rows.map(toDto), total };
  }

  /** Sets readAt once; marking it again keeps the first time. Another customer's is 404. */
  async markRead(customer: AuthenticatedCustomer, id: string): Promise<NotificationDto> {
    const [rows] = await this.dataSource.query<[NotificationRow[], number]>(
      `UPDATE notifications SET read_at = coalesce(read_at, now())
       WHERE id = $1 AND customer_id = $2
       RETURNING ${COLUMNS}`,
      [id, customer.id],
    );
    if (rows.length === 0) throw NotificationError.notFound(id);
    return toDto(rows[0]);
  }
}
