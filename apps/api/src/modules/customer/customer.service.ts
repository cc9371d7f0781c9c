import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import type { AuthenticatedCustomer } from '../../common/auth/auth.decorators';
import { AppConfigService } from '../../config/app-config.service';
import { CustomerError } from './customer.errors';
import { CustomerRepository } from './customer.repository';
import type { CreateCustomerDto } from './dto/create-customer.dto';
import type { CustomerCreatedDto } from './dto/customer-created.dto';

const TOKEN_CACHE_TTL_MS = 5 * 60 * 1000;
const TOKEN_CACHE_MAX = 50_000;

function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/**
 * The customer module's facade: registration and bearer-token resolution. Resolved tokens are
 * cached briefly so a request that Redis answers (a lost seat race) does not touch PostgreSQL.
 */
@Injectable()
export class CustomerService implements OnModuleInit {
  private readonly logger = new Logger(CustomerService.name);
  /** Resolved (or resolving) tokens: concurrent first requests with one token share one query. */
  private readonly tokenCache = new Map<
    string,
    { customer: Promise<AuthenticatedCustomer | null>; at: number }
  >();
  private adminTokenHash: Buffer;

  constructor(
    private readonly customers: CustomerRepository,
    private readonly config: AppConfigService,
  ) {}

  onModuleInit(): void {
    let adminToken = this.config.get('ADMIN_TOKEN');
    if (!adminToken) {
      adminToken = `adm_${randomBytes(24).toString('base64url')}`;
      this.logger.warn(`ADMIN_TOKEN is not set; generated one for this run: ${adminToken}`);
    }
    this.adminTokenHash = createHash('sha256').update(adminToken).digest();
  }

  async register(input: CreateCustomerDto): Promise<CustomerCreatedDto> {
    const token = `slk_${randomBytes(32).toString('base64url')}`;
    const customer = { id: randomUUID(), email: input.email, name: input.name };
    const inserted = await this.customers.insert({ ...customer, tokenHash: hashToken(token) });
    if (!inserted) throw CustomerError.emailTaken(input.email);
    return { ...customer, token };
  }

  /** The customer owning this bearer token, or null. */
  async authenticate(token: string): Promise<AuthenticatedCustomer | null> {
    const hash = hashToken(token);
    const cached = this.tokenCache.get(hash);
    if (cached && Date.now() - cached.at < TOKEN_CACHE_TTL_MS) return cached.customer;
    if (this.tokenCache.size >= TOKEN_CACHE_MAX) this.tokenCache.clear();
    const customer = this.customers.findByTokenHash(hash);
    this.tokenCache.set(hash, { customer, at: Date.now() });
    // Unknown tokens and failed lookups are not remembered: a token may be registered a moment later.
    customer.then(
      (found) => found ?? this.tokenCache.delete(hash),
      () => this.tokenCache.delete(hash),
    );
    return customer;
  }

  isAdminToken(token: string): boolean {
    const candidate = createHash('sha256').update(token).digest();
    return timingSafeEqual(candidate, this.adminTokenHash);
  }
}
