/** What a successful acquire hands back; everything release and extend need. */
export interface Lease {
  readonly keys: readonly string[];
  /** Owner value stored in every key; chosen by the caller or random. */
  readonly owner: string;
  /** Fencing token, strictly larger than any token minted before for any of these keys. */
  readonly fence: bigint;
  readonly ttlMs: number;
}
