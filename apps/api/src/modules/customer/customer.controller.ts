import { Body, Controller, HttpCode, Post } from '@nestjs/common';
import { ApiTags } from '@nestjs/swagger';
import { ApiProblems } from '../../common/http/api-problems.decorator';
import { ClientIp } from '../../common/http/client-ip.decorator';
import { CustomerService } from './customer.service';
import { CreateCustomerDto } from './dto/create-customer.dto';
import { CustomerCreatedDto } from './dto/customer-created.dto';

@ApiTags('customers')
@Controller('customers')
export class CustomerController {
  constructor(private readonly customers: CustomerService) {}

  /**
   * Register; the answer carries the bearer token, shown only this once. At most
   * REGISTRATIONS_PER_IP_PER_HOUR registrations an hour from one address (429 with Retry-After).
   */
  @Post()
  @HttpCode(201)
  @ApiProblems(400, 409, 429)
  register(
    @Body() body: CreateCustomerDto,
    @ClientIp() client: string,
  ): Promise<CustomerCreatedDto> {
    return this.customers.register(body, client);
  }
}
