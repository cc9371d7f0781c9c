import { Transform } from 'class-transformer';
import { IsBoolean, IsOptional } from 'class-validator';
import { PageQueryDto } from '../../../common/pagination/page-query.dto';

/** `?limit=&offset=&unread=true` */
export class NotificationQueryDto extends PageQueryDto {
  /** true: only notifications not yet marked read. */
  @IsOptional()
  @Transform(({ value }: { value: unknown }) =>
    value === 'true' ? true : value === 'false' ? false : value,
  )
  @IsBoolean()
  unread?: boolean;
}
