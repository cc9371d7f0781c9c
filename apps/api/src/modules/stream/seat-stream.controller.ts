import { Controller, Get, Headers, Query, Req, Res } from '@nestjs/common';
import { ApiHeader, ApiOkResponse, ApiProduces, ApiTags } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ApiProblems } from '../../common/http/api-problems.decorator';
import { UuidParam } from '../../common/http/uuid-param.decorator';
import { clientAddress } from '../../common/rate-limit/client-address';
import { StreamQueryDto } from './dto/stream-query.dto';
import { SeatStreamService } from './seat-stream.service';
import { SseSink } from './sse-sink';

@ApiTags('events')
@Controller('events')
export class SeatStreamController {
  constructor(private readonly streams: SeatStreamService) {}

  /**
   * The event's seats, live (Server-Sent Events). First `event: snapshot` (`id: <seq>`, data
   * `{seq, seats: [{label, status}], sections: [{name, available}]}`), then `event: seats` (data
   * `{seq, changes: [{label, status}], sections}`) for every committed transaction that changed
   * seats, `seq` strictly increasing; `: ping` every 10 s. Reconnect with `Last-Event-ID` (or
   * `?lastEventId=`) to get the messages after it, or a new snapshot when they are gone.
   * `event: stale` says live updates are paused (Redis unreachable); a snapshot follows when they
   * resume. One client address may hold STREAM_MAX_PER_IP streams open on an instance (`429`
   * beyond it, with Retry-After).
   */
  @Get(':eventId/seats/stream')
  @ApiProduces('text/event-stream')
  @ApiHeader({
    name: 'Last-Event-ID',
    required: false,
    description: 'Resume after this seq',
    schema: { type: 'string', pattern: '^\\d{1,15}$', example: '1042' },
  })
  @ApiOkResponse({
    description: 'text/event-stream: snapshot, then seats messages',
    content: { 'text/event-stream': { schema: { type: 'string' } } },
  })
  @ApiProblems(400, 404, 429, 503)
  async stream(
    @UuidParam('eventId') eventId: string,
    @Query() query: StreamQueryDto,
    @Headers('last-event-id') lastEventId: string | undefined,
    @Req() request: FastifyRequest,
    @Res() reply: FastifyReply,
  ): Promise<void> {
    const ticket = await this.streams.open(
      eventId,
      lastEventId ?? query.lastEventId,
      clientAddress(request.ip),
    );
    try {
      reply.hijack();
      const sink = new SseSink(reply.raw);
      sink.open({ ...reply.getHeaders(), 'x-request-id': request.id });
      // From here the stream gives the client's slot back when it closes.
      await this.streams.start(ticket, sink);
    } catch (error) {
      this.streams.release(ticket);
      throw error;
    }
  }
}
