import { Injectable } from '@nestjs/common';
import type { Page } from '../../common/pagination/page';
import { OutboxMessageDto } from './dto/outbox-message.dto';
import type { OutboxQueryDto } from './dto/outbox-query.dto';
import { NotificationError } from './notification.errors';
import { OutboxRepository } from './outbox.repository';

/** Operators' view of the outbox: what is stuck or dead, and a second chance for the dead. */
@Injectable()
export class OutboxAdminService {
  constructor(private readonly outbox: OutboxRepository) {}

  list(query: OutboxQueryDto): Promise<Page<OutboxMessageDto>> {
    return this.outbox.list(query.status, query.limit, query.offset);
  }

  /** dead → pending with its attempts reset; anything else is 409 naming its status. */
  async retry(id: string): Promise<OutboxMessageDto> {
    const revived = await this.outbox.revive(id);
    if (revived) return revived;
    const current = await this.outbox.find(id);
    if (!current) throw NotificationError.outboxMessageNotFound(id);
    throw NotificationError.notDead(id, current.status);
  }
}
