import { Controller, Get, HttpCode, Post, Query, Req, Res } from '@nestjs/common';
import { ApiTags } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { AdminAuth } from '../../common/auth/auth.decorators';
import { ApiProblems } from '../../common/http/api-problems.decorator';
import { UuidParam } from '../../common/http/uuid-param.decorator';
import { sendPage } from '../../common/pagination/page';
import { OutboxMessageDto } from './dto/outbox-message.dto';
import { OutboxQueryDto } from './dto/outbox-query.dto';
import { OutboxAdminService } from './outbox-admin.service';

@ApiTags('admin')
@AdminAuth()
@Controller('admin/outbox')
export class AdminOutboxController {
  constructor(private readonly outbox: OutboxAdminService) {}

  /** Outbox messages, newest first, e.g. `?status=dead` for the dead letter. */
  @Get()
  @ApiProblems(400)
  async list(
    @Query() query: OutboxQueryDto,
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<OutboxMessageDto[]> {
    return sendPage(await this.outbox.list(query), query, request, reply);
  }

  /** Sends a dead message again: back to pending with its attempts reset. Not dead: 409. */
  @Post(':id/retry')
  @HttpCode(200)
  @ApiProblems(400, 404, 409)
  retry(@UuidParam('id') id: string): Promise<OutboxMessageDto> {
    return this.outbox.retry(id);
  }
}
