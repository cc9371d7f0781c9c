import { Controller, Get, Query, Req, Res } from '@nestjs/common';
import { ApiTags } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ApiProblems } from '../../common/http/api-problems.decorator';
import { UuidParam } from '../../common/http/uuid-param.decorator';
import { sendPage } from '../../common/pagination/page';
import { PageQueryDto } from '../../common/pagination/page-query.dto';
import { CatalogService } from './catalog.service';
import { EventDto } from './dto/event.dto';
import { SeatDto } from './dto/seat.dto';

@ApiTags('events')
@Controller('events')
export class CatalogController {
  constructor(private readonly catalog: CatalogService) {}

  /** Events by start time, with seat counts by status. Total in X-Total-Count, pages in Link. */
  @Get()
  @ApiProblems(400)
  async list(
    @Query() query: PageQueryDto,
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<EventDto[]> {
    return sendPage(await this.catalog.listEvents(query), query, request, reply);
  }

  /** One event with its seat counts by status. */
  @Get(':eventId')
  @ApiProblems(400, 404)
  get(@UuidParam('eventId') eventId: string): Promise<EventDto> {
    return this.catalog.getEvent(eventId);
  }

  /** The seat map with each seat's status (never who holds it). */
  @Get(':eventId/seats')
  @ApiProblems(400, 404)
  seats(@UuidParam('eventId') eventId: string): Promise<SeatDto[]> {
    return this.catalog.listSeats(eventId);
  }
}
