import { Transform } from 'class-transformer';
import {
  IsBoolean,
  IsIn,
  IsInt,
  IsOptional,
  IsString,
  IsUrl,
  Matches,
  Max,
  Min,
  MinLength,
  ValidateIf,
} from 'class-validator';

const toBoolean = ({ value }: { value: unknown }): unknown =>
  value === 'true' ? true : value === 'false' ? false : value;

/** Every setting the API reads from its environment; checked once at boot. */
export class EnvironmentVariables {
  @IsInt()
  @Min(0)
  @Max(65535)
  PORT = 3000;

  /** PostgreSQL connection URL; main.ts fills it in (local server or embedded) when unset. */
  @IsUrl({ protocols: ['postgres', 'postgresql'], require_tld: false, require_protocol: true })
  DATABASE_URL: string;

  /** redis://…, rediss://…, redis-sentinel://host:port[,…]/<master>, or redis-cluster://host:port[,…]. */
  @Matches(/^(rediss?:\/\/\S+|redis-(sentinel|cluster):\/\/[^\s,/]+(,[^\s,/]+)*(\/\S+)?)$/, {
    message:
      'REDIS_URL must be redis://, rediss://, redis-sentinel://host:port[,…]/<master> or redis-cluster://host:port[,…]',
  })
  REDIS_URL = 'redis://127.0.0.1:6379';

  /** Bearer token for /admin routes; one is generated and logged once when unset. */
  @IsOptional()
  @IsString()
  @MinLength(16)
  ADMIN_TOKEN?: string;

  @IsInt()
  @Min(1)
  @Max(86400)
  HOLD_TTL_SECONDS = 300;

  @IsInt()
  @Min(1)
  @Max(100)
  MAX_SEATS_PER_BOOKING = 10;

  /** redis: one server; redlock: a majority of REDIS_URLS; off: PostgreSQL alone decides. */
  @IsIn(['redis', 'redlock', 'off'])
  LOCK_MODE: 'redis' | 'redlock' | 'off' = 'redis';

  /** Comma-separated independent Redis nodes for LOCK_MODE=redlock (an odd number, e.g. 3). */
  @ValidateIf((env: EnvironmentVariables) => env.LOCK_MODE === 'redlock')
  @Matches(/^rediss?:\/\/[^,\s]+(,rediss?:\/\/[^,\s]+)*$/, {
    message: 'REDIS_URLS must be a comma-separated list of redis:// URLs when LOCK_MODE=redlock',
  })
  REDIS_URLS?: string;

  /** A Redis command slower than this counts as Redis unavailable (PostgreSQL decides alone). */
  @IsInt()
  @Min(50)
  @Max(10_000)
  REDIS_COMMAND_TIMEOUT_MS = 1000;

  @IsIn(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
  LOG_LEVEL = 'info';

  /** How often the sweeper looks for holds past their TTL. */
  @IsInt()
  @Min(100)
  @Max(3_600_000)
  SWEEP_INTERVAL_MS = 1000;

  /** PostgreSQL-only holds running at once per instance while Redis is unreachable. */
  @IsInt()
  @Min(1)
  @Max(1000)
  FALLBACK_CONCURRENCY = 8;

  /** Holds allowed to wait for a fallback slot; beyond it the API answers 503 with Retry-After. */
  @IsInt()
  @Min(0)
  @Max(100_000)
  FALLBACK_QUEUE = 2000;

  @IsInt()
  @Min(1)
  @Max(200)
  DB_POOL_SIZE = 10;

  @IsBoolean()
  @Transform(toBoolean)
  MIGRATIONS_RUN = true;

  /** Requests per minute per bearer token (per IP without one); 0 switches the limit off. */
  @IsInt()
  @Min(0)
  @Max(1_000_000)
  RATE_LIMIT_PER_MINUTE = 600;
}
