import { Body, Controller, Delete, Get, HttpCode, Post, Query, Req, Res } from '@nestjs/common';
import { ApiBody, ApiTags } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import {
  type AuthenticatedCustomer,
  CurrentCustomer,
  CustomerAuth,
} from '../../common/auth/auth.decorators';
import { ApiProblems } from '../../common/http/api-problems.decorator';
import { UuidParam } from '../../common/http/uuid-param.decorator';
import { sendPage } from '../../common/pagination/page';
import { PageQueryDto } from '../../common/pagination/page-query.dto';
import { BookingService } from './booking.service';
import { BookingDto } from './dto/booking.dto';
import { CreateBookingDto } from './dto/create-booking.dto';
import { TimelineEntryDto } from './dto/timeline-entry.dto';

const EVENT_ID = '3f1c9a52-7b0e-4d36-9a51-2f4c8e0d6b17';

/** The three shapes of a hold, as Swagger UI offers them (the first is filled in). */
const HOLD_EXAMPLES = {
  seats: { summary: 'These seats', value: { eventId: EVENT_ID, seatIds: ['A1'] } },
  bestAvailable: {
    summary: 'The best 2 seats together',
    value: { eventId: EVENT_ID, quantity: 2, section: 'Stalls', together: true },
  },
  generalAdmission: {
    summary: 'General admission: 4 units of a GA section',
    value: { eventId: EVENT_ID, section: 'Floor', quantity: 4 },
  },
};

@ApiTags('bookings')
@CustomerAuth()
@Controller('bookings')
export class BookingController {
  constructor(private readonly bookings: BookingService) {}

  /**
   * Holds seats for HOLD_TTL_SECONDS, all or none: the named `seatIds`, or the best available
   * `quantity` (adjacent unless `together: false`; answered with `nextToEachOther`). 409 lists
   * `conflictingSeats`, or says SOLD_OUT, NOT_ENOUGH_TOGETHER or CUSTOMER_LIMIT; 422 names unknown
   * or repeated labels, too many seats, an unknown section, or the seats a hold would strand.
   */
  @Post()
  @HttpCode(201)
  @ApiBody({ type: CreateBookingDto, examples: HOLD_EXAMPLES })
  @ApiProblems(400, 404, 409, 422, 503)
  hold(
    @CurrentCustomer() customer: AuthenticatedCustomer,
    @Body() body: CreateBookingDto,
  ): Promise<BookingDto> {
    return this.bookings.hold(customer, body);
  }

  /**
   * Extends a live hold to now + HOLD_TTL_SECONDS, never past its creation +
   * HOLD_MAX_LIFETIME_SECONDS, at most HOLD_MAX_EXTENSIONS times; else 409 BOOKING.CANNOT_EXTEND with
   * `reason` (`not_held`, `max_extensions`, `max_lifetime`). A lapsed hold is never revived.
   */
  @Post(':id/extend')
  @HttpCode(200)
  @ApiProblems(400, 404, 409)
  extend(
    @CurrentCustomer() customer: AuthenticatedCustomer,
    @UuidParam('id') id: string,
  ): Promise<BookingDto> {
    return this.bookings.extend(customer, id);
  }

  /** My bookings, newest first. Total in X-Total-Count, pages in Link. */
  @Get()
  @ApiProblems(400)
  async list(
    @CurrentCustomer() customer: AuthenticatedCustomer,
    @Query() query: PageQueryDto,
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<BookingDto[]> {
    return sendPage(await this.bookings.list(customer, query), query, request, reply);
  }

  /** One of my bookings; another customer's is 404. */
  @Get(':id')
  @ApiProblems(400, 404)
  get(
    @CurrentCustomer() customer: AuthenticatedCustomer,
    @UuidParam('id') id: string,
  ): Promise<BookingDto> {
    return this.bookings.get(customer, id);
  }

  /**
   * Releases a held booking, or cancels a confirmed one and refunds its payment; the seats are free
   * again either way. Repeating it answers the same.
   */
  @Delete(':id')
  @HttpCode(200)
  @ApiProblems(400, 404)
  release(
    @CurrentCustomer() customer: AuthenticatedCustomer,
    @UuidParam('id') id: string,
  ): Promise<BookingDto> {
    return this.bookings.release(customer, id);
  }

  /** The booking's timeline, oldest first. */
  @Get(':id/events')
  @ApiProblems(400, 404)
  timeline(
    @CurrentCustomer() customer: AuthenticatedCustomer,
    @UuidParam('id') id: string,
  ): Promise<TimelineEntryDto[]> {
    return this.bookings.timeline(customer, id);
  }
}
