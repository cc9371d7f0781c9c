import { apiNodeOptions } from '../../support/bench/child-processes';
import type { CpuReport } from '../../support/bench/proc-stats';
import { fmt, perSecond, type ReportSection, type TableRow } from '../../support/bench/report';
import { ratio, round } from '../../support/bench/stats';
import { summarizeFloats } from './latency';
import { type measure, POLL_CONNECTIONS, type StreamOptions } from './measure';
import { GROUPS, SEATS_PER_ROW, STREAM_POLL_MS } from './stream-run';

/* The run's figures (the JSON's summary), its notes, and the printed table built from them. */

export type Measured = Awaited<ReturnType<typeof measure>>;
type Summary = ReturnType<typeof summarizeRun>;
type Trio = { p50: number | null; p99: number | null; max: number | null };
type Value = number | null | undefined;

const cores = (report: CpuReport | null | undefined, group: string) =>
  report?.groups[group]?.cores ?? null;

/** The holds and releases: answers by status, one refusal text per status, the rate sent. */
function loadFigures({ load }: Measured) {
  const [statuses, refusals]: [Record<string, number>, Map<string, string>] = [{}, new Map()];
  for (const c of [...load.holds, ...load.releases]) {
    const key = `${c.kind} ${c.status}`;
    statuses[key] = (statuses[key] ?? 0) + 1;
    if (c.text && !refusals.has(key)) refusals.set(key, c.text);
  }
  const sent = load.holds.map((h) => h.sentAt).filter(Number.isFinite);
  const sendSpanS = sent.length > 1 ? (Math.max(...sent) - Math.min(...sent)) / 1000 : null;
  const held = load.holds.filter((h) => h.status === '201');
  return {
    statuses,
    notes: [...refusals].map(([key, text]) => `${statuses[key]} x ${key}: ${text}`),
    holdsOk: held.length,
    releasesOk: load.releases.filter((r) => r.status === '200').length,
    holdRate: sendSpanS ? round((sent.length - 1) / sendSpanS, 1) : null,
    holdAnswer: summarizeFloats(Float32Array.from(held, (h) => h.answeredAt - h.sentAt)),
  };
}

/** What N pollers would ask at an interval: requests/s, API instances and cores, bytes/s. */
function pollingAt(o: StreamOptions, m: Measured, intervalMs: number | null) {
  const [seatsRate, ok] = [m.seatsWindow.perSecond ?? null, m.seatsWindow.ok];
  const cpuSeconds = m.seatsWindow.cpu?.groups[GROUPS.api]?.cpuSeconds ?? null;
  const cpuMsPerPoll = cpuSeconds !== null && ok ? round((cpuSeconds * 1000) / ok, 3) : null;
  const perSecond =
    intervalMs && intervalMs > 0 ? round((o.subscribers * 1000) / intervalMs, 0) : null;
  const at = perSecond !== null && {
    intervalMs: round(intervalMs, 1),
    requestsPerSecond: perSecond,
    apiInstances: seatsRate ? round(perSecond / seatsRate, 1) : null,
    apiCores: cpuMsPerPoll === null ? null : round((perSecond * cpuMsPerPoll) / 1000, 1),
    bytesPerSecond: Math.round(perSecond * m.seatsBytes),
  };
  return { seatsRate, cpuMsPerPoll, at: at || null };
}

function summarizeRun(o: StreamOptions, m: Measured, f: ReturnType<typeof loadFigures>) {
  const windowS = (m.load.end - m.load.start) / 1000;
  const streamMessages = m.settled.seq - m.open.baseSeq;
  const p50 = m.latency.hold.pairs.p50;
  const { seatsRate, cpuMsPerPoll, at: atOneSecond } = pollingAt(o, m, 1000);
  const [c, t, liveRate, fanout] = [m.checks, m.tally, m.liveWindow.perSecond ?? null, m.fanout];
  const pg = ['PostgreSQL: bench database', 'PostgreSQL: server'].map((g) => cores(m.cpu, g));
  return {
    subscribers: o.subscribers,
    opened: o.subscribers - m.open.failed,
    openMs: m.open.openMs,
    subscribersWithGap: c.gaps,
    subscribersMismatched: c.mismatched,
    subscribersSectionsMismatched: c.sectionsMismatched,
    subscribersLost: c.lost,
    subscribersBehindAtEnd: c.behind,
    subscribersDivergent: c.divergent,
    staleFrames: t.stale,
    reconnects: t.reconnects,
    resnapshots: t.resnapshots,
    duplicates: t.duplicates,
    messagesPerSubscriber: { min: t.messagesMin, max: t.messagesMax },
    streamMessages,
    expectedMessages: f.holdsOk + f.releasesOk,
    holds: m.load.count,
    holdsOk: f.holdsOk,
    releases: m.load.releases.length,
    releasesOk: f.releasesOk,
    holdsDelayedBySeat: m.load.delayedBySeat,
    holdRate: f.holdRate,
    holdAnswerMs: f.holdAnswer,
    latencyMs: m.latency,
    apiCores: cores(m.cpu, GROUPS.api),
    benchCores: cores(m.cpu, GROUPS.bench),
    postgresCores: round((pg[0] ?? 0) + (pg[1] ?? 0), 2),
    redisCores: cores(m.cpu, GROUPS.redis),
    machineCores: m.cpu.machineCores,
    otherCores: m.cpu.otherCores,
    benchEventLoopDelayMs: m.eventLoopDelayMs,
    rssMB: m.rss,
    apiHeapUsedMB: { max: m.heap.maxHeapUsedMB, last: m.heap.lastHeapUsedMB },
    apiEventLoopLagP99MaxMs: m.lagP99MaxMs,
    pollOnFreshApi: m.pollOnFreshApi,
    socketQueuesKB: {
      serverTxMax: m.socketQueues.maxServerTxKB,
      clientRxMax: m.socketQueues.maxClientRxKB,
    },
    streamBytesPerSecond: windowS > 0 ? Math.round(m.bytesWindow / windowS) : null,
    publishedPerSecond: windowS > 0 ? round(streamMessages / windowS, 1) : null,
    seatsBytes: m.seatsBytes,
    seatsPerSecond: seatsRate,
    seatsApiCores: cores(m.seatsWindow.cpu, GROUPS.api),
    cpuMsPerPoll,
    seatsP50Ms: m.seatsWindow.latencyMs.p50 ?? null,
    livePerSecond: liveRate,
    seatsVsLive: ratio(seatsRate, liveRate),
    polling: {
      atOneSecond,
      atStreamP50: pollingAt(o, m, p50 !== null ? Math.max(p50, 1) : null).at,
    },
    fanout: fanout && {
      hold: fanout.latency.hold,
      release: fanout.latency.release,
      all: fanout.latency.all,
      lost: fanout.lost,
      behind: fanout.behind,
      serverCores: cores(fanout.cpu, 'fan-out server (node)'),
      benchCores: cores(fanout.cpu, GROUPS.bench),
      machineCores: fanout.cpu.machineCores,
      benchEventLoopDelayMs: fanout.eventLoopDelayMs,
      openMs: fanout.openMs,
    },
    redisPublishPerSecond: m.publish.perSecond,
    apiDied: m.died,
  };
}

/** What a reader must know about the run: failures first, then anything unexpected. */
function notesOf(m: Measured, s: Summary, refusals: string[]): (string | false | null)[] {
  const { died, checks: c, latency, match, frames, open, fanout } = m;
  const heap = m.heap.samples.filter((x) => x.heapUsedMB !== null).slice(-12);
  const missing = latency.hold.missing + latency.release.missing;
  const { error, fatal, warn } = m.apiLog.levels;
  // `n > 0`: "n text".
  const some = (n: number, text: string) => n > 0 && `${fmt(n)} ${text}`;
  return [
    died && `the API died (code ${died.code}, signal ${died.signal}): ${died.tail.join(' | ')}`,
    died && `API heap MB before it died: ${heap.map((x) => `${x.s}s ${x.heapUsedMB}`).join(', ')}`,
    m.pollOnFreshApi && 'the polling windows ran on a fresh API (the first died)',
    ...c.samples,
    some(open.failed, `streams never opened: ${open.failures[0]}`),
    open.snapshotSeqs.length > 1 && `first snapshots at seqs ${open.snapshotSeqs.join(', ')}`,
    s.streamMessages !== s.expectedMessages &&
      `${s.streamMessages} messages numbered for ${s.expectedMessages} successful holds and releases`,
    some(match.neverDelivered, 'seqs reached no subscriber as a seats message'),
    some(match.unmatched, 'changes matched no hold or release'),
    ...refusals,
    some(m.load.delayedBySeat, "holds waited past their moment for their seat's release"),
    some(missing, '(subscriber, change) pairs never arrived as a seats message'),
    some(
      latency.arrivedBeforeAnswer,
      "pairs arrived before the change's answer (negative latency)",
    ),
    some(m.tally.otherFrames, 'frames of an unknown event'),
    some(c.behind, 'subscribers not at the last seq at the end'),
    error + fatal + warn > 0 && `API log while streaming: ${JSON.stringify(m.apiLog.messages)}`,
    !!frames &&
      frames.seats < s.opened * s.streamMessages &&
      `the API counted ${fmt(frames.seats)} seats frames for ${fmt(s.opened)} x ${s.streamMessages}`,
    !!fanout &&
      fanout.lost + fanout.behind > 0 &&
      `fan-out ceiling: ${fanout.lost} lost, ${fanout.behind} behind at the end`,
    m.publish.skipped && `no PUBLISH ceiling: ${m.publish.skipped}`,
  ];
}

/** The summary, the answers by status, the notes, and whether the run passed. */
export function summarize(o: StreamOptions, m: Measured) {
  const figures = loadFigures(m);
  const summary = summarizeRun(o, m, figures);
  const { gaps, mismatched, sectionsMismatched, lost, divergent } = m.checks;
  const failed = [gaps, mismatched, sectionsMismatched, lost, divergent, m.tally.divergentFrames];
  const ok = !m.died && summary.opened === o.subscribers && failed.every((n) => n === 0);
  const notes = notesOf(m, summary, figures.notes).filter((n): n is string => !!n);
  return { ok, summary, statuses: figures.statuses, notes };
}
export type Report = ReturnType<typeof summarize>;

const ms = (v: Value) => fmt(v, 1);
const c2 = (v: Value) => fmt(v, 2);
const slash = (...values: string[]) => values.join(' / ');
const trio = (l: Trio | undefined) => (l ? slash(ms(l.p50), ms(l.p99), ms(l.max)) : '-');
const delay = (d: Trio | undefined) => (d ? slash(ms(d.p99), ms(d.max)) : '');
const mbps = (v: Value) => (v === null || v === undefined ? '-' : `${fmt(v / 1e6, 1)} MB/s`);
const row = (figure: string, measured: string, more: Omit<TableRow, 'figure'> = {}): TableRow => ({
  figure,
  measured,
  ...more,
});
const zero = (figure: string, value: Value) => row(figure, fmt(value), { goal: '0' });

/** The old-space cap npm start gives the API, as text. */
function heapCap(): string {
  const option = apiNodeOptions().find((o) => o.startsWith('--max-old-space-size='));
  return option ? `old space capped at ${option.split('=')[1]} MB` : 'no heap cap';
}

/** Subscribers and holds: all there, in order, equal to the API's state. */
const deliveryRows = (s: Summary): TableRow[] => [
  row(
    'subscribers open (snapshot received) / time to open all',
    `${fmt(s.opened)} / ${fmt(s.openMs)} ms`,
    { goal: fmt(s.subscribers) },
  ),
  zero('subscribers with a gap in seq', s.subscribersWithGap),
  zero('subscribers whose snapshot + changes != GET /seats at the end', s.subscribersMismatched),
  zero('  whose last sections != GET /events/{id} availability', s.subscribersSectionsMismatched),
  zero('subscribers lost (connection error, stream ended, no snapshot)', s.subscribersLost),
  row(
    'reconnects / stale frames / new snapshots / duplicates',
    slash(...[s.reconnects, s.staleFrames, s.resnapshots, s.duplicates].map((v) => fmt(v))),
  ),
  row(
    'seats messages per subscriber (min / max) vs numbered',
    slash(fmt(s.messagesPerSubscriber.min), fmt(s.messagesPerSubscriber.max)),
    { ceiling: fmt(s.streamMessages) },
  ),
  row(
    'holds 201 of sent / releases 200 of sent / hold rate',
    `${fmt(s.holdsOk)} / ${fmt(s.holds)}, ${fmt(s.releasesOk)} / ${fmt(s.releases)}, ${perSecond(s.holdRate)}`,
  ),
  row('  hold answer p50 / p99 / max ms', trio(s.holdAnswerMs)),
];

/** Commit-to-client latency, beside the minimal fan-out's. */
function latencyRows({ latencyMs: l, fanout: f, benchEventLoopDelayMs }: Summary): TableRow[] {
  const vs = (figure: string, m: Trio, c: Trio | undefined, withRatio = false) =>
    row(figure, trio(m), { ceiling: trio(c), ratio: withRatio ? ratio(c?.p50, m.p50) : null });
  return [
    vs(
      'commit-to-client ms: hold 201 -> subscriber, p50 / p99 / max',
      l.hold.pairs,
      f?.hold.pairs,
      true,
    ),
    vs('  to the first subscriber per change', l.hold.first, f?.hold.first),
    vs('  to the last subscriber per change', l.hold.last, f?.hold.last, true),
    vs('  release 200 -> subscriber, p50 / p99 / max', l.release.pairs, f?.release.pairs),
    row(
      '  (subscriber, change) pairs measured / arrived before the answer',
      slash(fmt(l.all.n), fmt(l.arrivedBeforeAnswer)),
    ),
    row(
      '  this process event-loop delay p99 / max ms (stamps both ends)',
      delay(benchEventLoopDelayMs),
      { ceiling: delay(f?.benchEventLoopDelayMs) },
    ),
  ];
}

/** CPU, memory and bytes of the API while it streams. */
function resourceRows(s: Summary): TableRow[] {
  const [f, r, q] = [s.fanout, s.rssMB, s.socketQueuesKB];
  const mb = (...values: Value[]) => slash(...values.map(ms));
  return [
    row(
      'API CPU in the window (cores) / machine busy (of 2)',
      slash(c2(s.apiCores), c2(s.machineCores)),
      { ceiling: f ? slash(c2(f.serverCores), c2(f.machineCores)) : '' },
    ),
    row(
      '  bench (subscribers + load) / PostgreSQL / redis / other cores',
      slash(...[s.benchCores, s.postgresCores, s.redisCores, s.otherCores].map(c2)),
      { ceiling: f ? `bench ${c2(f.benchCores)}` : '' },
    ),
    row(
      'API RSS MB: before / streams open / max during / after close',
      mb(r.before, r.open, r.maxDuring, r.afterClose),
    ),
    row('API peak RSS (VmHWM) MB', ms(r.peak), { goal: '<= 250' }),
    row(
      `API heap used MB, max / last (its /metrics, every 0.5 s; ${heapCap()})`,
      mb(s.apiHeapUsedMB.max, s.apiHeapUsedMB.last),
    ),
    row(
      'kernel queues of the streams, highest total KB: API unsent / bench unread',
      mb(q.serverTxMax, q.clientRxMax),
    ),
    row('  API event-loop lag p99, highest sample ms', ms(s.apiEventLoopLagP99MaxMs)),
    row(
      'stream: bytes/s to all subscribers / messages/s published',
      slash(mbps(s.streamBytesPerSecond), perSecond(s.publishedPerSecond)),
    ),
    row(
      '  Redis PUBLISH raw (redis-benchmark) vs messages/s published',
      perSecond(s.publishedPerSecond),
      {
        ceiling: perSecond(s.redisPublishPerSecond),
        ratio: ratio(s.publishedPerSecond, s.redisPublishPerSecond),
      },
    ),
  ];
}

/** What polling GET /events/{id}/seats would cost instead, at 1 s and at the stream's p50. */
function pollingRows(s: Summary): TableRow[] {
  const { atOneSecond, atStreamP50 } = s.polling;
  const at = (name: string, p: typeof atOneSecond) =>
    p
      ? [
          row(
            `${fmt(s.subscribers)} pollers ${name} (${fmt(p.intervalMs, 1)} ms): req/s / API instances / API cores`,
            slash(perSecond(p.requestsPerSecond), fmt(p.apiInstances, 1), fmt(p.apiCores, 1)),
            { ceiling: `stream: 1 / ${c2(s.apiCores)}` },
          ),
          row('  bytes/s polling vs the stream', mbps(p.bytesPerSecond), {
            ceiling: mbps(s.streamBytesPerSecond),
          }),
        ]
      : [];
  return [
    row(
      `GET /events/{id}/seats req/s (${POLL_CONNECTIONS} conn.) vs /health/live (same server)`,
      perSecond(s.seatsPerSecond),
      { ceiling: perSecond(s.livePerSecond), ratio: s.seatsVsLive },
    ),
    row(
      '  API cores in that window / API CPU ms per GET seats / body bytes',
      slash(c2(s.seatsApiCores), c2(s.cpuMsPerPoll), fmt(s.seatsBytes)),
    ),
    ...at('every 1 s', atOneSecond),
    ...at('every stream p50', atStreamP50),
  ];
}

export function reportSections(o: StreamOptions, r: Report): ReportSection[] {
  const s = r.summary;
  const parts = [deliveryRows(s), latencyRows(s), resourceRows(s), pollingRows(s)];
  const title =
    `Seat stream: ${fmt(s.subscribers)} subscribers on one instance, ${fmt(o.rows * SEATS_PER_ROW)} seats ` +
    `(${o.rows} x ${SEATS_PER_ROW}); holds ${fmt(o.rate)}/s for ${o.seconds} s, ` +
    `each seat released 1 s before it comes round again; STREAM_POLL_MS ${STREAM_POLL_MS}`;
  const ceiling =
    'ceiling of the latency rows: the minimal fan-out (a Node process writes each frame it is told ' +
    'of to the same number of open responses; no database, no poll, no Redis), the same frames ' +
    'replayed at the same moments, the API stopped; ratio = ceiling p50 / measured p50';
  const rows = parts.flatMap((rows) => [{ figure: '-' }, ...rows]).slice(1);
  return [{ title, rows, lines: [ceiling], notes: r.notes }, { lines: [r.ok ? 'OK' : 'FAILED'] }];
}
