import { Body, Controller, HttpCode, Post } from '@nestjs/common';
import { ApiTags } from '@nestjs/swagger';
import { ApiProblems } from '../../common/http/api-problems.decorator';
import { CustomerService } from './customer.service';
import { CreateCustomerDto } from './dto/create-customer.dto';
import { CustomerCreatedDto } from './dto/customer-created.dto';

@ApiTags('customers')
@Controller('customers')
export class CustomerController {
  constructor(private readonly customers: CustomerService) {}

  /** Register; the answer carries the bearer token, shown only this once. */
  @Post()
  @HttpCode(201)
  @ApiProblems(400, 409)
  register(@Body() body: CreateCustomerDto): Promise<CustomerCreatedDto> {
    return this.customers.register(body);
  }
}
