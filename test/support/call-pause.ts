/**
 * A pause between two steps of the real code, at the point a test names: the next call of
 * `object[method]` waits before it runs until `resume()`. It stands in for a process paused (GC,
 * SIGSTOP, a slow network) exactly where the protocol model (docs/model.md) found an interleaving
 * that mattered; the call itself, and PostgreSQL, Redis and the gateway, stay real.
 */
export class CallPause {
  /** Resolves when the paused call has arrived (and is waiting). */
  readonly reached: Promise<void>;
  private arrived!: () => void;
  private release!: () => void;
  private readonly released = new Promise<void>((resolve) => (this.release = resolve));

  private constructor(
    private readonly object: object,
    private readonly method: string,
    private readonly original: (...args: unknown[]) => unknown,
    private readonly ownBefore: boolean,
    pause: boolean,
  ) {
    this.reached = new Promise<void>((resolve) => (this.arrived = resolve));
    if (!pause) this.release();
  }

  /** Pauses the next call of `object[method]` whose arguments `match` until `resume()`. */
  static next<T extends object>(
    object: T,
    method: keyof T & string,
    match: (...args: any[]) => boolean = () => true,
  ): CallPause {
    return CallPause.install(object, method, match, true);
  }

  /** Lets the next call of `object[method]` whose arguments `match` run; `reached` tells when. */
  static watch<T extends object>(
    object: T,
    method: keyof T & string,
    match: (...args: any[]) => boolean = () => true,
  ): CallPause {
    return CallPause.install(object, method, match, false);
  }

  private static install(
    object: object,
    method: string,
    match: (...args: any[]) => boolean,
    pause: boolean,
  ): CallPause {
    const target = object as Record<string, unknown>;
    const original = target[method];
    if (typeof original !== 'function') throw new Error(`${method} is not a method`);
    const own = Object.prototype.hasOwnProperty.call(target, method);
    const gate = new CallPause(
      object,
      method,
      original as (...args: unknown[]) => unknown,
      own,
      pause,
    );
    // An own property shadows the method for this one instance, until the call it waits for;
    // other calls (another booking's, the reconciler's) go straight through.
    target[method] = async function (this: unknown, ...args: unknown[]) {
      if (!match(...args)) return gate.original.apply(this, args);
      gate.restore();
      gate.arrived();
      await gate.released;
      return gate.original.apply(this, args);
    };
    return gate;
  }

  resume(): void {
    this.release();
  }

  /** Puts the method back if it was never called. */
  restore(): void {
    const target = this.object as Record<string, unknown>;
    if (this.ownBefore) target[this.method] = this.original;
    else delete target[this.method];
  }
}
