import { Body, Controller, Delete, Get, HttpCode, Post, Query, Req, Res } from '@nestjs/common';
import { ApiTags } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import {
  type AuthenticatedCustomer,
  CurrentCustomer,
  CustomerAuth,
} from '../../../common/auth/auth.decorators';
import { ApiProblems } from '../../../common/http/api-problems.decorator';
import { UuidParam } from '../../../common/http/uuid-param.decorator';
import { sendPage } from '../../../common/pagination/page';
import { PageQueryDto } from '../../../common/pagination/page-query.dto';
import { CreateWebhookEndpointDto } from './dto/create-webhook-endpoint.dto';
import { CreatedWebhookEndpointDto } from './dto/created-webhook-endpoint.dto';
import { WebhookDeliveryDto } from './dto/webhook-delivery.dto';
import { WebhookEndpointDto } from './dto/webhook-endpoint.dto';
import { WebhookEndpointService } from './webhook-endpoint.service';

@ApiTags('webhooks')
@CustomerAuth()
@Controller('webhook-endpoints')
export class WebhookEndpointController {
  constructor(private readonly endpoints: WebhookEndpointService) {}

  /**
   * Subscribes a URL to events. The answer carries the signing secret, shown this once. 422 names
   * a URL that is not http(s) or points into a private network, unknown events, or too many endpoints.
   */
  @Post()
  @HttpCode(201)
  @ApiProblems(400, 422)
  create(
    @CurrentCustomer() customer: AuthenticatedCustomer,
    @Body() body: CreateWebhookEndpointDto,
  ): Promise<CreatedWebhookEndpointDto> {
    return this.endpoints.create(customer, body);
  }

  /** My webhook endpoints, newest first (no secrets). Total in X-Total-Count, pages in Link. */
  @Get()
  @ApiProblems(400)
  async list(
    @CurrentCustomer() customer: AuthenticatedCustomer,
    @Query() query: PageQueryDto,
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<WebhookEndpointDto[]> {
    return sendPage(await this.endpoints.list(customer, query), query, request, reply);
  }

  /** One of my endpoints; another customer's is 404. */
  @Get(':id')
  @ApiProblems(400, 404)
  get(
    @CurrentCustomer() customer: AuthenticatedCustomer,
    @UuidParam('id') id: string,
  ): Promise<WebhookEndpointDto> {
    return this.endpoints.get(customer, id);
  }

  /** Deletes the endpoint (200 with it, status `deleted`) and cancels its pending deliveries. */
  @Delete(':id')
  @HttpCode(200)
  @ApiProblems(400, 404)
  remove(
    @CurrentCustomer() customer: AuthenticatedCustomer,
    @UuidParam('id') id: string,
  ): Promise<WebhookEndpointDto> {
    return this.endpoints.remove(customer, id);
  }

  /** The endpoint's deliveries, newest first, each with its attempts (status, latency, error). */
  @Get(':id/deliveries')
  @ApiProblems(400, 404)
  async deliveries(
    @CurrentCustomer() customer: AuthenticatedCustomer,
    @UuidParam('id') id: string,
    @Query() query: PageQueryDto,
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<WebhookDeliveryDto[]> {
    return sendPage(await this.endpoints.deliveriesOf(customer, id, query), query, request, reply);
  }
}
