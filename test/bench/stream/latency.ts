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
  const sum = values.reduce((total, v) => total + v, 0);
  return {
    n: values.length,
    p50: round(at(50)),
    p90: round(at(90)),
    p99: round(at(99)),
    max: round(at(100)),
    mean: round(values.length ? sum / values.length : null),
  };
}

export interface MessageTime {
  seq: number;
  /** When the change's answer arrived here (for several changes, the last one). */
  t0: number;
  kind: 'hold' | 'release';
  frame: string;
}

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
    for (const { label, status } of parsed?.raw ?? []) {
      const n = used.get(`${status} ${label}`) ?? 0;
      used.set(`${status} ${label}`, n + 1);
      const matched = sources[status]?.get(label)?.[n];
      if (!matched) unmatched += 1;
      else [t0, kind] = [Math.max(t0, matched.answeredAt), matched.kind];
    }
    if (parsed && Number.isFinite(t0)) {
      const frame = `id: ${seq}\nevent: seats\ndata: ${parsed.text}\n\n`;
      messages.push({ seq, t0, kind, frame });
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
  const [p, f, l] = [pairs.subarray(0, n), first.subarray(0, reached), last.subarray(0, reached)];
  return {
    pairs: summarizeFloats(p),
    first: summarizeFloats(f),
    last: summarizeFloats(l),
    missing,
    early,
  };
}

export function latencies(subscribers: readonly SseSubscriber[], messages: readonly MessageTime[]) {
  const of = (kind: MessageTime['kind']) =>
    spread(
      subscribers,
      messages.filter((m) => m.kind === kind),
    );
  const [{ early: holdsEarly, ...hold }, { early: releasesEarly, ...release }] = [
    of('hold'),
    of('release'),
  ];
  const all = spread(subscribers, messages).pairs;
  return { hold, release, all, arrivedBeforeAnswer: holdsEarly + releasesEarly };
}
