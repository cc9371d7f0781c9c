import { Controller, Get } from '@nestjs/common';
import { GatewayDatabase } from '../database/gateway-database';

/** `GET /health`: 200 while the simulator can reach its database. */
@Controller('health')
export class HealthController {
  constructor(private readonly db: GatewayDatabase) {}

  @Get()
  async health(): Promise<{ status: 'ok' }> {
    await this.db.query('SELECT 1');
    return { status: 'ok' };
  }
}
