import type { FrameCache, SseSubscriber } from '../../support/bench/sse-subscribers';
import { round } from '../../support/bench/stats';
import type { Change } from './hold-load';

/*
 * Commit-to-client latency: from a change's answer arriving here to each subscriber receiving
 * the seats message that carries it. Messages are matched to changes by label: the n-th `held`
 * of a seat is its n-th hold. Millions of (subscriber, change) pairs: typed arrays, sorted in place.
 */

/** n, p50, p90, p99, max and mean of `values`, which it sorts. */
export function summarizeFloats(values: Float32Array) {
  values.sort();
  const at = (p: number) =>
    values.length ? values[Math.max(0, Math.ceil((p / 100) * values.length) - 1)] : null;
  const mean = values.length ? values.reduce((total, v) => total + v, 0) / values.length : null;
  const [p50, p90, p99, max] = [50, 90, 99, 100].map((p) => round(at(p)));
  return { n: values.length, p50, p90, p99, max, mean: round(mean) };
}

/** A seats message; t0: when its change's answer arrived here (for several, the last one). */
export type MessageTime = { seq: number; t0: number; kind: Change['kind']; frame: string };

/** The successful changes by label, in order. */
function byLabel(changes: readonly Change[]): Map<string, Change[]> {
  const map = new Map<string, Change[]>();
  for (const c of changes) {
    const ok = c.status === (c.kind === 'hold' ? '201' : '200');
    if (ok && Number.isFinite(c.answeredAt)) map.set(c.label, [...(map.get(c.label) ?? []), c]);
  }
  for (const list of map.values()) list.sort((a, b) => a.index - b.index);
  return map;
}

/** Which change each message of (fromSeq, toSeq] carries; answers each message's t0. */
export function matchMessages(
  cache: FrameCache,
  changes: Record<'holds' | 'releases', readonly Change[]>,
  fromSeq: number,
  toSeq: number,
) {
  const sources: Record<string, Map<string, Change[]>> = {
    held: byLabel(changes.holds),
    free: byLabel(changes.releases),
  };
  const used = new Map<string, number>();
  const messages: MessageTime[] = [];
  let [neverDelivered, unmatched] = [0, 0];
  for (let seq = fromSeq + 1; seq <= toSeq; seq += 1) {
    const parsed = cache.seats.get(seq);
    if (!parsed) neverDelivered += 1;
    let [t0, kind]: [number, MessageTime['kind']] = [-Infinity, 'hold'];
    for (const { label, status } of parsed?.changes ?? []) {
      const n = used.get(`${status} ${label}`) ?? 0;
      used.set(`${status} ${label}`, n + 1);
      const matched = sources[status]?.get(label)?.[n];
      if (!matched) unmatched += 1;
      else [t0, kind] = [Math.max(t0, matched.answeredAt), matched.kind];
    }
    if (parsed && Number.isFinite(t0)) {
      messages.push({ seq, t0, kind, frame: `id: ${seq}\nevent: seats\ndata: ${parsed.text}\n\n` });
    }
  }
  return { messages, neverDelivered, unmatched };
}

/** Every (subscriber, message) pair's latency, and per message its first and last subscriber. */
function spread(subscribers: readonly SseSubscriber[], messages: readonly MessageTime[]) {
  const pairs = new Float32Array(messages.length * subscribers.length);
  const [first, last] = [new Float32Array(messages.length), new Float32Array(messages.length)];
  let [n, reached, missing, early] = [0, 0, 0, 0];
  for (const m of messages) {
    let [lo, hi] = [Infinity, -Infinity];
    for (const s of subscribers) {
      const ms = s.arrivalOf(m.seq) - m.t0;
      if (Number.isNaN(ms)) {
        missing += 1;
        continue;
      }
      if (ms < 0) early += 1;
      pairs[n++] = ms;
      [lo, hi] = [Math.min(lo, ms), Math.max(hi, ms)];
    }
    if (lo <= hi) [first[reached], last[reached++]] = [lo, hi];
  }
  return {
    pairs: summarizeFloats(pairs.subarray(0, n)),
    first: summarizeFloats(first.subarray(0, reached)),
    last: summarizeFloats(last.subarray(0, reached)),
    missing,
    early,
  };
}

export function latencies(subscribers: readonly SseSubscriber[], messages: readonly MessageTime[]) {
  const of = (kind: MessageTime['kind']) => {
    const { early, ...rest } = spread(
      subscribers,
      messages.filter((m) => m.kind === kind),
    );
    return [rest, early] as const;
  };
  const [[hold, holdsEarly], [release, releasesEarly]] = [of('hold'), of('release')];
  const all = spread(subscribers, messages).pairs;
  return { hold, release, all, arrivedBeforeAnswer: holdsEarly + releasesEarly };
}
