import { Injectable } from '@nestjs/common';
import { DataSource, QueryFailedError } from 'typeorm';
import type { AuthenticatedCustomer } from '../../common/auth/auth.decorators';
import { PG_UNIQUE_VIOLATION, pgErrorCode } from '../../database/pg-error';

/** A new customers row; the bearer token itself is shown once and never stored, only its hash. */
export interface NewCustomer {
  id: string;
  email: string;
  name: string;
  /** SHA-256 of the bearer token, hex. */
  tokenHash: string;
}

interface CustomerRow {
  id: string;
  email: string;
  name: string;
}

const COLUMNS = 'id, email, name';

/** The customers table. */
@Injectable()
export class CustomerRepository {
  constructor(private readonly dataSource: DataSource) {}

  /**
   * False when a unique index refused the row: an email registered already (compared case-
   * insensitively by customers_email_key), or, in theory only, a token hash taken.
   */
  async insert(customer: NewCustomer): Promise<boolean> {
    try {
      await this.dataSource.query(
        `INSERT INTO customers (id, email, name, token_hash) VALUES ($1, $2, $3, $4)`,
        [customer.id, customer.email, customer.name, customer.tokenHash],
      );
      return true;
    } catch (error) {
      if (error instanceof QueryFailedError && pgErrorCode(error) === PG_UNIQUE_VIOLATION) {
        return false;
      }
      throw error;
    }
  }

  async findByTokenHash(tokenHash: string): Promise<AuthenticatedCustomer | null> {
    const rows = await this.dataSource.query<CustomerRow[]>(
      `SELECT ${COLUMNS} FROM customers WHERE token_hash = $1`,
      [tokenHash],
    );
    return rows.length > 0 ? { id: rows[0].id, email: rows[0].email, name: rows[0].name } : null;
  }
}
