/**
 * One call per key at a time: callers that ask for a key while its call runs share that call's
 * result (or its error), so a crowd that finds the same thing missing reads it once, not once each.
 */
export class SingleFlight<T> {
  private readonly running = new Map<string, Promise<T>>();

  run(key: string, call: () => Promise<T>): Promise<T> {
    const running = this.running.get(key);
    if (running) return running;
    const started = call().finally(() => this.running.delete(key));
    this.running.set(key, started);
    return started;
  }
}
