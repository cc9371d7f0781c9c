export function percentile(sorted: readonly number[], p: number): number | null {
  if (sorted.length === 0) return null;
  const index = Math.ceil((p / 100) * sorted.length) - 1;
  return sorted[Math.min(sorted.length - 1, Math.max(0, index))];
}

export function round(value: number | null | undefined, digits = 1): number | null {
  return value === null || value === undefined || !Number.isFinite(value)
    ? null
    : Number(value.toFixed(digits));
}

/** `value / ceiling` to 3 digits, or null when either is missing. */
export function ratio(value: number | null | undefined, ceiling: number | null | undefined) {
  return value === null || value === undefined || !ceiling ? null : round(value / ceiling, 3);
}

export interface LatencySummary {
  n: number;
  p50: number | null;
  p99: number | null;
  max: number | null;
  mean: number | null;
}

/** Rounded to 0.1. */
export function latencySummary(values: readonly number[]): LatencySummary {
  const sorted = [...values].sort((a, b) => a - b);
  const mean = sorted.length ? sorted.reduce((sum, v) => sum + v, 0) / sorted.length : null;
  return {
    n: sorted.length,
    p50: round(percentile(sorted, 50)),
    p99: round(percentile(sorted, 99)),
    max: round(sorted.at(-1)),
    mean: round(mean),
  };
}

/** `work(item, index)` over `items`, at most `limit` in flight; the results in order. */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  work: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let index = next++; index < items.length; index = next++) {
      results[index] = await work(items[index], index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/** Counter by counter, `after` minus `before`. */
export function subtract<K extends string>(
  after: Record<K, number>,
  before: Record<K, number>,
): Record<K, number> {
  const out = {} as Record<K, number>;
  for (const key of Object.keys(after) as K[]) out[key] = after[key] - before[key];
  return out;
}
