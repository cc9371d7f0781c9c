import { SetMetadata } from '@nestjs/common';

export const SKIP_RATE_LIMIT = 'seatlock:skip-rate-limit';

/** Never counted: probes, scrapes and the gateway's signed calls back into us. */
export const SkipRateLimit = (): MethodDecorator & ClassDecorator =>
  SetMetadata(SKIP_RATE_LIMIT, true);
