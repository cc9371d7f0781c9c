import type { CpuReport } from '../../support/bench/proc-stats';
import { ratio, round } from '../../support/bench/stats';
import { fmt } from '../../support/bench/table';
import { summarizeFloats } from './latency';
import type { measure, StreamOptions } from './measure';
import { GROUPS } from './stream-run';

/* The figures of a run (the JSON's summary), its notes, and whether it passed. */

export type Measured = Awaited<ReturnType<typeof measure>>;

const cores = (report: CpuReport | null | undefined, group: string): number | null =>
  report?.groups[group]?.cores ?? null;

function postgresCores(report: CpuReport): number | null {
  const [a, b] = ['PostgreSQL: bench database', 'PostgreSQL: server'].map((g) => cores(report, g));
  return round((a ?? 0) + (b ?? 0), 2);
}

/** The holds and releases: answers by status, one refusal text per status, the rate sent. */
function loadFigures({ load }: Measured) {
  const statuses: Record<string, number> = {};
  const refusalSamples: Record<string, string> = {};
  for (const c of [...load.holds, ...load.releases]) {
    const key = `${c.kind} ${c.status}`;
    statuses[key] = (statuses[key] ?? 0) + 1;
    if (c.text) refusalSamples[key] ??= c.text;
  }
  const sent = load.holds.map((h) => h.sentAt).filter(Number.isFinite);
  const sendSpanS = sent.length > 1 ? (Math.max(...sent) - Math.min(...sent)) / 1000 : null;
  const held = load.holds.filter((h) => h.status === '201');
  const answerMs = held.map((h) => h.answeredAt - h.sentAt).sort((a, b) => a - b);
  return {
    statuses,
    refusalSamples,
    holdsOk: held.length,
    releasesOk: load.releases.filter((r) => r.status === '200').length,
    holdRate: sendSpanS ? round((sent.length - 1) / sendSpanS, 1) : null,
    holdAnswer: summarizeFloats(Float32Array.from(answerMs)),
  };
}

/** What N pollers would ask at an interval: requests/s, API instances and cores, bytes/s. */
function pollingFigures(o: StreamOptions, m: Measured) {
  const seatsRate = m.seatsWindow.perSecond ?? null;
  const cpuSeconds = m.seatsWindow.cpu?.groups[GROUPS.api]?.cpuSeconds ?? null;
  const ok = m.seatsWindow.ok;
  const cpuMsPerPoll = cpuSeconds !== null && ok ? round((cpuSeconds * 1000) / ok, 3) : null;
  const at = (intervalMs: number | null) => {
    if (intervalMs === null || intervalMs <= 0) return null;
    const perSecond = round((o.subscribers * 1000) / intervalMs, 0);
    if (perSecond === null) return null;
    return {
      intervalMs: round(intervalMs, 1),
      requestsPerSecond: perSecond,
      apiInstances: seatsRate ? round(perSecond / seatsRate, 1) : null,
      apiCores: cpuMsPerPoll === null ? null : round((perSecond * cpuMsPerPoll) / 1000, 1),
      bytesPerSecond: Math.round(perSecond * m.seatsBytes),
    };
  };
  const p50 = m.latency.hold.pairs.p50;
  const polling = {
    atOneSecond: at(1000),
    atStreamP50: at(p50 !== null ? Math.max(p50, 1) : null),
  };
  return { seatsRate, cpuMsPerPoll, polling };
}

function fanoutFigures({ fanout }: Measured) {
  if (!fanout) return null;
  const { hold, release, all } = fanout.latency;
  return {
    hold,
    release,
    all,
    lost: fanout.lost,
    behind: fanout.behind,
    serverCores: cores(fanout.cpu, 'fan-out server (node)'),
    benchCores: cores(fanout.cpu, GROUPS.bench),
    machineCores: fanout.cpu.machineCores,
    benchEventLoopDelayMs: fanout.eventLoopDelayMs,
    openMs: fanout.openMs,
  };
}

function summarizeRun(o: StreamOptions, m: Measured) {
  const f = loadFigures(m);
  const windowS = (m.load.end - m.load.start) / 1000;
  const streamMessages = m.settled.seq - m.open.baseSeq;
  const { seatsRate, cpuMsPerPoll, polling } = pollingFigures(o, m);
  const { checks: c, tally: t } = m;
  const liveRate = m.liveWindow.perSecond ?? null;
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
    postgresCores: postgresCores(m.cpu),
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
    polling,
    fanout: fanoutFigures(m),
    redisPublishPerSecond: m.publish.perSecond,
    apiDied: m.died,
  };
}
export type Summary = ReturnType<typeof summarizeRun>;

/** What a reader must know about the run: failures first, then anything unexpected. */
function notesOf(m: Measured, s: Summary, f: ReturnType<typeof loadFigures>): string[] {
  const { died, checks: c, tally: t, latency, match, frames } = m;
  const heapTrail = m.heap.samples.filter((x) => x.heapUsedMB !== null).slice(-12);
  const missing = latency.hold.missing + latency.release.missing;
  const logged = m.apiLog.levels;
  const refusals = Object.entries(f.refusalSamples);
  return (
    [
      [
        died,
        `the API died (code ${died?.code}, signal ${died?.signal}): ${died?.tail.join(' | ')}`,
      ],
      [
        died,
        `API heap used (MB, its /metrics) in the last samples before it died: ${heapTrail.map((x) => `${x.s}s ${x.heapUsedMB}`).join(', ')}`,
      ],
      [m.pollOnFreshApi, 'the polling windows ran on a fresh API (the first died)'],
      ...c.samples.map((text) => [true, text] as const),
      [m.open.failed > 0, `${m.open.failed} streams never opened: ${m.open.failures[0]}`],
      [
        m.open.snapshotSeqs.length > 1,
        `first snapshots at different seqs: ${m.open.snapshotSeqs.join(', ')}`,
      ],
      [
        s.streamMessages !== s.expectedMessages,
        `${s.streamMessages} messages numbered for ${s.expectedMessages} successful holds and releases`,
      ],
      [
        match.neverDelivered > 0,
        `${match.neverDelivered} seqs reached no subscriber as a seats message`,
      ],
      [match.unmatched > 0, `${match.unmatched} changes matched no hold or release`],
      ...refusals.map(([key, text]) => [true, `${f.statuses[key]} x ${key}: ${text}`] as const),
      [
        m.load.delayedBySeat > 0,
        `${m.load.delayedBySeat} holds waited past their moment for their seat's release`,
      ],
      [missing > 0, `${fmt(missing)} (subscriber, change) pairs never arrived as a seats message`],
      [
        latency.arrivedBeforeAnswer > 0,
        `${fmt(latency.arrivedBeforeAnswer)} pairs arrived before the change's answer did (counted with negative latency)`,
      ],
      [t.otherFrames > 0, `${t.otherFrames} frames of an unknown event`],
      [c.behind > 0, `${c.behind} subscribers not at the last seq at the end`],
      [
        logged.error + logged.fatal + logged.warn > 0,
        `API log while streaming: ${JSON.stringify(m.apiLog.messages)}`,
      ],
      [
        frames && frames.seats < s.opened * s.streamMessages,
        `the API counted ${fmt(frames?.seats)} seats frames for ${fmt(s.opened)} x ${s.streamMessages}`,
      ],
      [
        m.fanout && (m.fanout.lost > 0 || m.fanout.behind > 0),
        `fan-out ceiling: ${m.fanout?.lost} lost, ${m.fanout?.behind} behind at the end`,
      ],
      [m.publish.skipped, `no PUBLISH ceiling: ${m.publish.skipped}`],
    ] as const
  ).flatMap(([when, text]) => (when ? [text] : []));
}

/** The summary, the answers by status, the notes, and whether the run passed. */
export function summarize(o: StreamOptions, m: Measured) {
  const figures = loadFigures(m);
  const summary = summarizeRun(o, m);
  const c = m.checks;
  const clean = [c.gaps, c.mismatched, c.sectionsMismatched, c.lost, c.divergent];
  const ok =
    !m.died &&
    summary.opened === o.subscribers &&
    clean.every((n) => n === 0) &&
    m.tally.divergentFrames === 0;
  return { ok, summary, statuses: figures.statuses, notes: notesOf(m, summary, figures) };
}
export type Report = ReturnType<typeof summarize>;
