import { Body, Controller, HttpCode, Post } from '@nestjs/common';
import { ApiTags } from '@nestjs/swagger';
import { AdminAuth } from '../../common/auth/auth.decorators';
import { ApiProblems } from '../../common/http/api-problems.decorator';
import { CatalogService } from './catalog.service';
import { CreateEventDto } from './dto/create-event.dto';
import { EventWithSeatsDto } from './dto/event-with-seats.dto';

@ApiTags('admin')
@AdminAuth()
@Controller('admin/events')
export class AdminEventController {
  constructor(private readonly catalog: CatalogService) {}

  /** Creates an event and its seat map (sections × rows × seats, one price per section). */
  @Post()
  @HttpCode(201)
  @ApiProblems(400, 422)
  create(@Body() body: CreateEventDto): Promise<EventWithSeatsDto> {
    return this.catalog.createEvent(body);
  }
}
