import { ApiProperty } from '@nestjs/swagger';

export class LivenessDto {
  /** Always `ok` when the process answers. */
  @ApiProperty({ enum: ['ok'] })
  status: 'ok';
}
