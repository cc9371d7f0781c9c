/** What a successful acquire hands back; everything release and extend need. */
export interface Lease {
  readonly keys: readonly string[];
  /** Owner value stored in every key; chosen by the caller or random. */
  readonly owner: string;
  /** Fencing token, strictly larger than any token minted before for any of these keys. */
  readonly fence: bigint;
  readonly ttlMs: number;
  /**
   * Until when (on the monotonic `performance.now()` clock) the lease is certainly still held: measured
   * from before the acquire (or extend) was sent, less a drift allowance. Past it, assume it is lost.
   */
  readonly validUntil: number;
}

/** What `using()` hands to the guarded work. */
export interface LeaseContext {
  /** Fires — and stays fired — when the lease is lost or its validity deadline passes. */
  readonly signal: AbortSignal;
  readonly fence: bigint;
  readonly lease: Lease;
  /** Throws LockLostError if the lease is lost or past its deadline; call before each guarded write. */
  assertHeld(): void;
}
