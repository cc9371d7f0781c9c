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
  ValidateBy,
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

  /**
   * `production` refuses to start without strong secrets (run-secrets.ts); anything else makes
   * the missing ones up for the run.
   */
  @IsString()
  NODE_ENV = 'development';

  /** Bearer token for /admin routes; unset: one is made for this run and logged once. */
  @IsOptional()
  @IsString()
  @MinLength(16)
  ADMIN_TOKEN?: string;

  /** Set: GET /metrics needs `Authorization: Bearer <METRICS_TOKEN>`. Unset: /metrics is open. */
  @IsOptional()
  @IsString()
  @MinLength(16)
  METRICS_TOKEN?: string;

  @IsInt()
  @Min(1)
  @Max(86400)
  HOLD_TTL_SECONDS = 300;

  /** An extended hold never lasts past its creation plus this. */
  @IsInt()
  @Min(1)
  @Max(86400)
  HOLD_MAX_LIFETIME_SECONDS = 1800;

  /** How often one hold may be extended (0: never). */
  @IsInt()
  @Min(0)
  @Max(100)
  HOLD_MAX_EXTENSIONS = 2;

  /** Seats one customer may hold or have booked for one event at once. */
  @IsInt()
  @Min(1)
  @Max(10_000)
  MAX_SEATS_PER_CUSTOMER_PER_EVENT = 20;

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

  /**
   * The least time between two sweeps: the sweeper runs when the next hold lapses, batching the
   * lapses of this interval (it also looks once a minute for holds a crashed instance left).
   */
  @IsInt()
  @Min(100)
  @Max(3_600_000)
  SWEEP_INTERVAL_MS = 1000;

  /** PostgreSQL-only holds running at once per instance while Redis is unreachable. */
  @IsInt()
  @Min(1)
  @Max(1000)
  FALLBACK_CONCURRENCY = 8;

  /** Seat streams (GET /events/{id}/seats/stream) one instance serves; beyond it 503. */
  @IsInt()
  @Min(1)
  @Max(1_000_000)
  STREAM_MAX_SUBSCRIBERS = 10_000;

  /** Seat streams one client address may hold open on one instance; beyond it 429 (0: no limit). */
  @IsInt()
  @Min(0)
  @Max(1_000_000)
  STREAM_MAX_PER_IP = 50;

  /**
   * How long an instance with stream subscribers lets commits gather before it publishes their seat
   * changes (the publisher is woken by the commits; this batches a burst).
   */
  @IsInt()
  @Min(5)
  @Max(60_000)
  STREAM_POLL_MS = 50;

  /**
   * The same wait on an instance nobody subscribes to: a sale nobody watches drains once a second
   * (a statement per second, not per hold), and its backlog is gone a second after the rush.
   */
  @IsInt()
  @Min(100)
  @Max(3_600_000)
  STREAM_IDLE_DRAIN_MS = 1000;

  /** Messages per event kept in Redis for resumes (Last-Event-ID); older ones mean a snapshot. */
  @IsInt()
  @Min(1)
  @Max(100_000)
  STREAM_HISTORY = 2000;

  /** The `: ping` comment on open streams (the contract: at least every 15 s). */
  @IsInt()
  @Min(100)
  @Max(15_000)
  STREAM_PING_MS = 10_000;

  /** Requests past the door at once (parsed and in our code); the rest wait there, in order. */
  @IsInt()
  @Min(1)
  @Max(100_000)
  MAX_REQUESTS_IN_FLIGHT = 256;

  /** Requests allowed to wait at the door; beyond it the API answers 503 with Retry-After. */
  @IsInt()
  @Min(0)
  @Max(1_000_000)
  MAX_REQUESTS_QUEUED = 10_000;

  /**
   * A request's headers must arrive within this (from its first byte), else 408 and the socket
   * closed: a client cannot hold a connection by sending them slowly. At most REQUEST_TIMEOUT_MS.
   */
  @IsInt()
  @Min(1000)
  @Max(600_000)
  @ValidateBy({
    name: 'notPastRequestTimeout',
    validator: {
      validate: (value: unknown, args) =>
        typeof value === 'number' &&
        value <= (args?.object as EnvironmentVariables).REQUEST_TIMEOUT_MS,
      defaultMessage: () => 'HEADERS_TIMEOUT_MS must not exceed REQUEST_TIMEOUT_MS',
    },
  })
  HEADERS_TIMEOUT_MS = 10_000;

  /**
   * The whole request, body included, must arrive within this, else 408 and the socket closed: a
   * client trickling a body holds its connection (never a slot in flight) no longer.
   */
  @IsInt()
  @Min(1000)
  @Max(600_000)
  REQUEST_TIMEOUT_MS = 30_000;

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

  /**
   * Requests a minute per customer, and per client address for anonymous calls and failed
   * authentications, counted across instances through Redis; 0 switches the limit off.
   */
  @IsInt()
  @Min(0)
  @Max(1_000_000)
  RATE_LIMIT_PER_MINUTE = 600;

  /**
   * The reverse proxies in front of the API, as addresses or CIDRs (comma-separated): a request
   * from one of them is counted against the client named in its X-Forwarded-For. Unset: the TCP
   * peer is the client (a header anyone can write is never believed).
   */
  @IsOptional()
  @Matches(/^[0-9a-fA-F:.]+(\/\d{1,3})?(\s*,\s*[0-9a-fA-F:.]+(\/\d{1,3})?)*$/, {
    message:
      'TRUST_PROXY must be IP addresses or CIDRs, comma-separated, e.g. 10.0.0.0/8,127.0.0.1',
  })
  TRUST_PROXY?: string;

  /** POST /customers an hour from one client address; 0 switches the limit off. */
  @IsInt()
  @Min(0)
  @Max(1_000_000)
  REGISTRATIONS_PER_IP_PER_HOUR = 20;

  /** The payment gateway (the simulator by default; `npm start` runs one when this is unset). */
  @IsUrl({ protocols: ['http', 'https'], require_tld: false, require_protocol: true })
  GATEWAY_URL = 'http://127.0.0.1:4010';

  /**
   * Shared with the gateway: signs its webhooks. Unset: one is made for this run and handed to the
   * simulator `npm start` runs (printed once when GATEWAY_URL names another gateway).
   */
  @IsOptional()
  @IsString()
  @MinLength(16)
  GATEWAY_WEBHOOK_SECRET?: string;

  /** Budget for one gateway operation, retries included. */
  @IsInt()
  @Min(100)
  @Max(120_000)
  GATEWAY_TIMEOUT_MS = 10_000;

  /**
   * The least time between two reconciler runs: it runs when a payment step left undone is past its
   * grace (and once a minute for payments a crashed instance left).
   */
  @IsInt()
  @Min(100)
  @Max(3_600_000)
  RECONCILE_INTERVAL_MS = 5000;

  /**
   * The longest the outbox dispatcher and delivery worker sleep with nothing known to be due: they
   * are woken by commits (NOTIFY) and by their next retry, so this only bounds how long work a
   * crashed instance left waits.
   */
  @IsInt()
  @Min(50)
  @Max(3_600_000)
  NOTIFY_POLL_MS = 30_000;

  /** First retry delay of a failed dispatch; doubles per attempt (with jitter). */
  @IsInt()
  @Min(10)
  @Max(3_600_000)
  NOTIFY_RETRY_BASE_MS = 1000;

  /** Failed dispatch attempts before a message goes to the dead letter (status dead). */
  @IsInt()
  @Min(1)
  @Max(100)
  NOTIFY_MAX_ATTEMPTS = 8;

  /** Outbox messages one dispatcher claims per round trip. */
  @IsInt()
  @Min(1)
  @Max(10_000)
  NOTIFY_BATCH_SIZE = 100;

  /** Batches one instance claims and fans out at once when a backlog builds (single messages after a batch failed). */
  @IsInt()
  @Min(1)
  @Max(64)
  NOTIFY_DISPATCH_CONCURRENCY = 4;

  /** How long a claim lasts; a crashed dispatcher's messages are due again after it. */
  @IsInt()
  @Min(500)
  @Max(3_600_000)
  NOTIFY_LEASE_MS = 30_000;

  /** Dispatched outbox messages are deleted after this many hours (dead ones are kept). */
  @IsInt()
  @Min(1)
  @Max(100_000)
  NOTIFY_RETENTION_HOURS = 168;

  /**
   * Where email notifications are sent: smtp://[user:pass@]host:port (STARTTLS when offered) or
   * smtps://… (TLS from the start). Unset: email is off, and the API says so once at start.
   */
  @IsOptional()
  @IsUrl(
    { protocols: ['smtp', 'smtps'], require_tld: false, require_protocol: true },
    { message: 'SMTP_URL must be an smtp:// or smtps:// URL, e.g. smtp://127.0.0.1:1025' },
  )
  SMTP_URL?: string;

  /** The From of every email: an address, optionally with a display name. */
  @Matches(/^([^<>@\r\n]*<[^\s<>@]+@[^\s<>@]+>|[^\s<>@]+@[^\s<>@]+)$/, {
    message: 'SMTP_FROM must be an address, e.g. "Seatlock <no-reply@seatlock.local>"',
  })
  SMTP_FROM = 'Seatlock <no-reply@seatlock.local>';

  /**
   * Budget for one delivery attempt (a webhook POST, an SMTP send); past it the attempt failed and
   * is retried with backoff. Delivery claims last longer than this, so a slow receiver is never
   * sent the same delivery by two instances at once.
   */
  @IsInt()
  @Min(100)
  @Max(120_000)
  NOTIFY_SEND_TIMEOUT_MS = 10_000;

  /**
   * Outbound webhooks may target private, loopback and link-local addresses (tests, local
   * development). Off by default: a customer's URL must not reach into our own network.
   */
  @IsBoolean()
  @Transform(toBoolean)
  WEBHOOK_ALLOW_PRIVATE_NETWORKS = false;
}
