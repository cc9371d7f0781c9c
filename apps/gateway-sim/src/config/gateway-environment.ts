import {
  IsIn,
  IsInt,
  IsNumber,
  IsOptional,
  IsString,
  IsUrl,
  Max,
  Min,
  MinLength,
} from 'class-validator';

/** Every setting the gateway simulator reads from its environment; checked once at boot. */
export class GatewayEnvironment {
  @IsInt()
  @Min(0)
  @Max(65535)
  GATEWAY_PORT = 4010;

  @IsString()
  GATEWAY_HOST = '0.0.0.0';

  /** Where the simulator keeps its state (schema `gateway_sim`); defaults to DATABASE_URL. */
  @IsUrl({ protocols: ['postgres', 'postgresql'], require_tld: false, require_protocol: true })
  GATEWAY_DATABASE_URL: string;

  /** Where events are posted; unset = no webhooks. */
  @IsOptional()
  @IsUrl({ protocols: ['http', 'https'], require_tld: false, require_protocol: true })
  GATEWAY_WEBHOOK_URL?: string;

  /** Signs the webhooks; shared with the API. No default: unset, one is made for the run. */
  @IsOptional()
  @IsString()
  @MinLength(16)
  GATEWAY_WEBHOOK_SECRET?: string;

  /** How long `pm_card_slow` takes to answer. */
  @IsInt()
  @Min(0)
  @Max(600_000)
  GATEWAY_SLOW_MS = 5000;

  /** How long a `pm_card_async` authorization stays `processing`. */
  @IsInt()
  @Min(0)
  @Max(86_400_000)
  GATEWAY_ASYNC_DELAY_MS = 2000;

  /** Share of events delivered twice (same event id), 0..1. */
  @IsNumber()
  @Min(0)
  @Max(1)
  GATEWAY_WEBHOOK_DUPLICATE_RATE = 0;

  /** Random extra delay per delivery, up to this; > 0 makes deliveries arrive out of order. */
  @IsInt()
  @Min(0)
  @Max(3_600_000)
  GATEWAY_WEBHOOK_MAX_DELAY_MS = 0;

  @IsInt()
  @Min(1)
  @Max(100)
  GATEWAY_WEBHOOK_MAX_ATTEMPTS = 8;

  /** First retry after about this long, doubling with each failed attempt. */
  @IsInt()
  @Min(1)
  @Max(3_600_000)
  GATEWAY_WEBHOOK_RETRY_BASE_MS = 500;

  @IsIn(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
  GATEWAY_LOG_LEVEL = 'info';
}
