/**
 * A stored error answer of an idempotent request, thrown so that the problem-details filter sends
 * it again byte for byte (with Idempotent-Replayed) instead of building a new one.
 */
export class ReplayedResponse extends Error {
  constructor(
    readonly status: number,
    readonly body: unknown,
  ) {
    super(`replayed ${status}`);
    this.name = 'ReplayedResponse';
  }
}
