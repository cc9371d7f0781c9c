import { ApiPropertyOptional } from '@nestjs/swagger';
import { IsIn, IsOptional } from 'class-validator';
import { PageQueryDto } from '../../../common/pagination/page-query.dto';
import type { OutboxStatus } from '../outbox.repository';

/** `?status=dead&limit=&offset=` */
export class OutboxQueryDto extends PageQueryDto {
  /** Only messages in this status; all without it. */
  @ApiPropertyOptional({ enum: ['pending', 'sent', 'dead'] })
  @IsOptional()
  @IsIn(['pending', 'sent', 'dead'])
  status?: OutboxStatus;
}
