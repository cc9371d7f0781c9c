import { Controller, Get, HttpCode, Post, Query, Req, Res } from '@nestjs/common';
import { ApiTags } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import {
  type AuthenticatedCustomer,
  CurrentCustomer,
  CustomerAuth,
} from '../../common/auth/auth.decorators';
import { ApiProblems } from '../../common/http/api-problems.decorator';
import { UuidParam } from '../../common/http/uuid-param.decorator';
import { sendPage } from '../../common/pagination/page';
import { NotificationDto } from './dto/notification.dto';
import { NotificationQueryDto } from './dto/notification-query.dto';
import { InAppNotificationService } from './in-app-notification.service';

@ApiTags('notifications')
@CustomerAuth()
@Controller('notifications')
export class NotificationController {
  constructor(private readonly notifications: InAppNotificationService) {}

  /** My in-app notifications, newest first; `unread=true` for the unread ones. Total in X-Total-Count. */
  @Get()
  @ApiProblems(400)
  async list(
    @CurrentCustomer() customer: AuthenticatedCustomer,
    @Query() query: NotificationQueryDto,
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<NotificationDto[]> {
    return sendPage(await this.notifications.list(customer, query), query, request, reply);
  }

  /** Marks one of my notifications read; again keeps the first readAt. Another customer's is 404. */
  @Post(':id/read')
  @HttpCode(200)
  @ApiProblems(400, 404)
  markRead(
    @CurrentCustomer() customer: AuthenticatedCustomer,
    @UuidParam('id') id: string,
  ): Promise<NotificationDto> {
    return this.notifications.markRead(customer, id);
  }
}
