import { DomainError } from '../../common/errors/domain.error';

/** Coded failures of the customer module. */
export class CustomerError extends DomainError {
  static emailTaken(email: string): CustomerError {
    return new CustomerError(
      'CUSTOMER.EMAIL_TAKEN',
      409,
      'Email already registered',
      `A customer with email ${email} already exists`,
    );
  }

  static unauthorized(detail: string): CustomerError {
    return new CustomerError(
      'AUTH.UNAUTHORIZED',
      401,
      'Unauthorized',
      detail,
      {},
      {
        'WWW-Authenticate': 'Bearer',
      },
    );
  }

  static forbidden(detail: string): CustomerError {
    return new CustomerError('AUTH.FORBIDDEN', 403, 'Forbidden', detail);
  }
}
