import { ApiPropertyOptional } from '@nestjs/swagger';
import { IsOptional, Matches } from 'class-validator';

export class StreamQueryDto {
  /**
   * Resume after this seq (as the Last-Event-ID header does, for clients that cannot set headers):
   * the messages after it, or a new snapshot when they are no longer kept.
   */
  @ApiPropertyOptional({ example: '1042' })
  @IsOptional()
  @Matches(/^\d{1,15}$/, { message: 'lastEventId must be a seq: digits only' })
  lastEventId?: string;
}
