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

  /** One client address past STREAM_MAX_PER_IP: its own streams must close first. */
  static tooManyForClient(max: number): StreamError {
    return new StreamError(
      'STREAM.TOO_MANY_FOR_CLIENT',
      429,
      'Too many streams from this client',
      `Your address already holds ${max} open seat streams on this instance (STREAM_MAX_PER_IP); ` +
        'close one, or retry shortly',
      {},
      { 'Retry-After': '5' },
    );
  }
}
