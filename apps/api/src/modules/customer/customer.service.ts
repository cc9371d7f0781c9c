import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { Injectable, type OnModuleInit } from '@nestjs/common';
import { LockProvider } from '@app/lock';
import type { AuthenticatedCustomer } from '../../common/auth/auth.decorators';
import { RateLimitError } from '../../common/rate-limit/rate-limit.errors';
import { RateLimiter } from '../../common/rate-limit/rate-limiter';
import { AppConfigService } from '../../config/app-config.service';
import { CustomerError } from './customer.errors';
import { CustomerRepository } from './customer.repository';
import type { CreateCustomerDto } from './dto/create-customer.dto';
import type { CustomerCreatedDto } from './dto/customer-created.dto';

const TOKEN_CACHE_TTL_MS = 5 * 60 * 1000;
/** Unknown tokens are remembered this long: a guessing flood costs one query per guess at most. */
const UNKNOWN_TOKEN_TTL_MS = 60 * 1000;
const TOKEN_CACHE_MAX = 50_000;
const UNKNOWN_TOKEN_MAX = 100_000;
const HOUR_MS = 60 * 60 * 1000;

/** A token being resolved, or resolved: `settled` once its customer is known. */
interface CachedToken {
  customer: Promise<AuthenticatedCustomer | null>;
  settled?: AuthenticatedCustomer;
  at: number;
}

function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/**
 * The customer module's facade: registration and bearer-token resolution. Resolved tokens are
 * cached here and, for the other instances, in Redis, so a request Redis answers (a lost seat race)
 * does not touch PostgreSQL, and a known customer is recognised without a query even where a
 * flood from its address stops new look-ups.
 */
@Injectable()
export class CustomerService implements OnModuleInit {
  /** Resolved (or resolving) tokens: concurrent first requests with one token share one query. */
  private readonly tokenCache = new Map<string, CachedToken>();
  /** Tokens PostgreSQL did not know, by hash, with when it said so. */
  private readonly unknownTokens = new Map<string, number>();
  private adminTokenHash: Buffer;

  constructor(
    private readonly customers: CustomerRepository,
    private readonly config: AppConfigService,
    private readonly limits: RateLimiter,
    private readonly lock: LockProvider,
  ) {}

  onModuleInit(): void {
    // Always set: the configuration makes one for the run when the environment has none.
    this.adminTokenHash = createHash('sha256').update(this.config.secret('ADMIN_TOKEN')).digest();
  }

  /** `client`: the caller's address, which may register REGISTRATIONS_PER_IP_PER_HOUR an hour. */
  async register(input: CreateCustomerDto, client: string): Promise<CustomerCreatedDto> {
    const verdict = await this.limits.hit(`register:${client}`, {
      limit: this.config.get('REGISTRATIONS_PER_IP_PER_HOUR'),
      windowMs: HOUR_MS,
    });
    if (!verdict.allowed) {
      throw RateLimitError.exceeded(
        verdict.retryAfterSeconds,
        `At most ${this.config.get('REGISTRATIONS_PER_IP_PER_HOUR')} registrations an hour from one address`,
      );
    }
    const token = `slk_${randomBytes(32).toString('base64url')}`;
    const customer = { id: randomUUID(), email: input.email, name: input.name };
    const hash = hashToken(token);
    const inserted = await this.customers.insert({ ...customer, tokenHash: hash });
    if (!inserted) throw CustomerError.emailTaken(input.email);
    // A new customer is known at once, here and on every instance.
    this.remember(hash, customer, true);
    return { ...customer, token };
  }

  /**
   * What this instance knows of a token without asking anyone: its customer, null when it is
   * known to be unknown, undefined when it has not been seen lately.
   */
  known(token: string): AuthenticatedCustomer | null | undefined {
    const hash = hashToken(token);
    const cached = this.tokenCache.get(hash);
    if (cached?.settled && Date.now() - cached.at < TOKEN_CACHE_TTL_MS) return cached.settled;
    const unknownAt = this.unknownTokens.get(hash);
    if (unknownAt !== undefined && Date.now() - unknownAt < UNKNOWN_TOKEN_TTL_MS) return null;
    return undefined;
  }

  /**
   * The customer owning this bearer token, or null. `beforeQuery` runs before PostgreSQL is asked
   * (the token is known neither here nor in Redis) and may refuse by throwing.
   */
  async authenticate(
    token: string,
    beforeQuery: () => Promise<void> = async () => undefined,
  ): Promise<AuthenticatedCustomer | null> {
    const hash = hashToken(token);
    const cached = this.tokenCache.get(hash);
    if (cached && Date.now() - cached.at < TOKEN_CACHE_TTL_MS) return cached.customer;
    const unknownAt = this.unknownTokens.get(hash);
    if (unknownAt !== undefined && Date.now() - unknownAt < UNKNOWN_TOKEN_TTL_MS) return null;

    const shared = await this.lock.recall(`customer-token:${hash}`).catch(() => null);
    if (shared) {
      const customer = JSON.parse(shared) as AuthenticatedCustomer;
      this.remember(hash, customer, false);
      return customer;
    }
    await beforeQuery();
    // Another request may have started the query while this one asked Redis.
    const started = this.tokenCache.get(hash);
    if (started) return started.customer;
    const customer = this.customers.findByTokenHash(hash);
    this.setCache(hash, customer);
    customer.then(
      (found) => {
        if (found) return this.remember(hash, found, true);
        this.tokenCache.delete(hash);
        if (this.unknownTokens.size >= UNKNOWN_TOKEN_MAX) this.unknownTokens.clear();
        this.unknownTokens.set(hash, Date.now());
      },
      // A failed look-up is not remembered: the next request asks again.
      () => this.tokenCache.delete(hash),
    );
    return customer;
  }

  isAdminToken(token: string): boolean {
    const candidate = createHash('sha256').update(token).digest();
    return timingSafeEqual(candidate, this.adminTokenHash);
  }

  private remember(hash: string, customer: AuthenticatedCustomer, share: boolean): void {
    this.unknownTokens.delete(hash);
    this.setCache(hash, Promise.resolve(customer), customer);
    if (share) {
      void this.lock
        .remember(`customer-token:${hash}`, JSON.stringify(customer), TOKEN_CACHE_TTL_MS)
        .catch(() => undefined);
    }
  }

  private setCache(
    hash: string,
    customer: Promise<AuthenticatedCustomer | null>,
    settled?: AuthenticatedCustomer,
  ): void {
    if (this.tokenCache.size >= TOKEN_CACHE_MAX) this.tokenCache.clear();
    this.tokenCache.set(hash, { customer, settled, at: Date.now() });
  }
}
