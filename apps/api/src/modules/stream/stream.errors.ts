import { DomainError } from '../../common/errors/domain.error';

/** Coded failures of the seat stream. */
export class StreamError extends DomainError {
  static tooManySubscribers(max: number): StreamError {
    return new StreamError(
      'STREAM.TOO_MANY_SUBSCRIBERS',
      503,
      'Too many subscribers',
      `This instance already serves ${max} seat streams (STREAM_MAX_SUBSCRIBERS); retry shortly`,
      {},
      { 'Retry-After': '5' },
    );
  }
}
