import * as proc from '../../support/bench/child-processes';
import { ratio } from '../../support/bench/stats';
import { fmt, perSecond, type ReportSection, type TableRow } from '../../support/bench/report';
import { POLL_CONNECTIONS, type StreamOptions } from './measure';
import { SEATS_PER_ROW, STREAM_POLL_MS } from './stream-run';
import type { Report, Summary } from './summary';

/* The printed report: the stream's figures beside the minimal fan-out's, then polling's cost. */

type Trio = { p50: number | null; p99: number | null; max: number | null };
const ms = (v: number | null | undefined) => fmt(v, 1);
const trio = (l: Trio | undefined) => (l ? `${ms(l.p50)} / ${ms(l.p99)} / ${ms(l.max)}` : '-');
const mbps = (v: number | null | undefined) =>
  v === null || v === undefined ? '-' : `${fmt(v / 1e6, 1)} MB/s`;
const slash = (...values: string[]) => values.join(' / ');

/** The old-space cap npm start gives the API, as text. */
function heapCap(): string {
  const option = proc.apiNodeOptions().find((o) => o.startsWith('--max-old-space-size='));
  return option ? `old space capped at ${option.split('=')[1]} MB` : 'no heap cap';
}

/** Subscribers and holds: all there, in order, equal to the API's state. */
function deliveryRows(s: Summary): TableRow[] {
  return [
    {
      figure: 'subscribers open (snapshot received) / time to open all',
      measured: `${fmt(s.opened)} / ${fmt(s.openMs)} ms`,
      goal: fmt(s.subscribers),
    },
    { figure: 'subscribers with a gap in seq', measured: fmt(s.subscribersWithGap), goal: '0' },
    {
      figure: 'subscribers whose snapshot + changes != GET /seats at the end',
      measured: fmt(s.subscribersMismatched),
      goal: '0',
    },
    {
      figure: '  whose last sections != GET /events/{id} availability',
      measured: fmt(s.subscribersSectionsMismatched),
      goal: '0',
    },
    {
      figure: 'subscribers lost (connection error, stream ended, no snapshot)',
      measured: fmt(s.subscribersLost),
      goal: '0',
    },
    {
      figure: 'reconnects / stale frames / new snapshots / duplicates',
      measured: slash(
        ...[s.reconnects, s.staleFrames, s.resnapshots, s.duplicates].map((v) => fmt(v)),
      ),
    },
    {
      figure: 'seats messages per subscriber (min / max) vs numbered',
      measured: slash(fmt(s.messagesPerSubscriber.min), fmt(s.messagesPerSubscriber.max)),
      ceiling: fmt(s.streamMessages),
    },
    {
      figure: 'holds 201 of sent / releases 200 of sent / hold rate',
      measured:
        `${fmt(s.holdsOk)} / ${fmt(s.holds)}, ${fmt(s.releasesOk)} / ${fmt(s.releases)}, ` +
        perSecond(s.holdRate),
    },
    { figure: '  hold answer p50 / p99 / max ms', measured: trio(s.holdAnswerMs) },
  ];
}

/** Commit-to-client latency, beside the minimal fan-out's. */
function latencyRows(s: Summary): TableRow[] {
  const [l, f] = [s.latencyMs, s.fanout];
  const delay = (d: Trio | undefined) => (d ? `${ms(d.p99)} / ${ms(d.max)}` : '');
  return [
    {
      figure: 'commit-to-client ms: hold 201 -> subscriber, p50 / p99 / max',
      measured: trio(l.hold.pairs),
      ceiling: trio(f?.hold.pairs),
      ratio: ratio(f?.hold.pairs.p50, l.hold.pairs.p50),
    },
    {
      figure: '  to the first subscriber per change',
      measured: trio(l.hold.first),
      ceiling: trio(f?.hold.first),
    },
    {
      figure: '  to the last subscriber per change',
      measured: trio(l.hold.last),
      ceiling: trio(f?.hold.last),
      ratio: ratio(f?.hold.last.p50, l.hold.last.p50),
    },
    {
      figure: '  release 200 -> subscriber, p50 / p99 / max',
      measured: trio(l.release.pairs),
      ceiling: trio(f?.release.pairs),
    },
    {
      figure: '  (subscriber, change) pairs measured / arrived before the answer',
      measured: slash(fmt(l.all.n), fmt(l.arrivedBeforeAnswer)),
    },
    {
      figure: '  this process event-loop delay p99 / max ms (stamps both ends)',
      measured: delay(s.benchEventLoopDelayMs),
      ceiling: delay(f?.benchEventLoopDelayMs),
    },
  ];
}

/** CPU, memory and bytes of the API while it streams. */
function resourceRows(s: Summary): TableRow[] {
  const [f, c2] = [s.fanout, (v: number | null | undefined) => fmt(v, 2)];
  const mb = (...values: (number | null)[]) => slash(...values.map((v) => fmt(v, 1)));
  return [
    {
      figure: 'API CPU in the window (cores) / machine busy (of 2)',
      measured: slash(c2(s.apiCores), c2(s.machineCores)),
      ceiling: f ? slash(c2(f.serverCores), c2(f.machineCores)) : '',
    },
    {
      figure: '  bench (subscribers + load) / PostgreSQL / redis / other cores',
      measured: slash(...[s.benchCores, s.postgresCores, s.redisCores, s.otherCores].map(c2)),
      ceiling: f ? `bench ${c2(f.benchCores)}` : '',
    },
    {
      figure: 'API RSS MB: before / streams open / max during / after close',
      measured: mb(s.rssMB.before, s.rssMB.open, s.rssMB.maxDuring, s.rssMB.afterClose),
    },
    { figure: 'API peak RSS (VmHWM) MB', measured: fmt(s.rssMB.peak, 1), goal: '<= 250' },
    {
      figure: `API heap used MB, max / last (its /metrics, every 0.5 s; ${heapCap()})`,
      measured: mb(s.apiHeapUsedMB.max, s.apiHeapUsedMB.last),
    },
    {
      figure: 'kernel queues of the streams, highest total KB: API unsent / bench unread',
      measured: mb(s.socketQueuesKB.serverTxMax, s.socketQueuesKB.clientRxMax),
    },
    {
      figure: '  API event-loop lag p99, highest sample ms',
      measured: ms(s.apiEventLoopLagP99MaxMs),
    },
    {
      figure: 'stream: bytes/s to all subscribers / messages/s published',
      measured: slash(mbps(s.streamBytesPerSecond), perSecond(s.publishedPerSecond)),
    },
    {
      figure: '  Redis PUBLISH raw (redis-benchmark) vs messages/s published',
      measured: perSecond(s.publishedPerSecond),
      ceiling: perSecond(s.redisPublishPerSecond),
      ratio: ratio(s.publishedPerSecond, s.redisPublishPerSecond),
    },
  ];
}

/** What polling GET /events/{id}/seats would cost instead, at 1 s and at the stream's p50. */
function pollingRows(s: Summary): TableRow[] {
  const rows: TableRow[] = [
    {
      figure: `GET /events/{id}/seats req/s (${POLL_CONNECTIONS} conn.) vs /health/live (same server)`,
      measured: perSecond(s.seatsPerSecond),
      ceiling: perSecond(s.livePerSecond),
      ratio: s.seatsVsLive,
    },
    {
      figure: '  API cores in that window / API CPU ms per GET seats / body bytes',
      measured: slash(fmt(s.seatsApiCores, 2), fmt(s.cpuMsPerPoll, 2), fmt(s.seatsBytes)),
    },
  ];
  const { atOneSecond, atStreamP50 } = s.polling;
  for (const [name, p] of [
    ['every 1 s', atOneSecond],
    ['every stream p50', atStreamP50],
  ] as const) {
    if (!p) continue;
    const [instances, cores] = [fmt(p.apiInstances, 1), fmt(p.apiCores, 1)];
    rows.push(
      {
        figure: `${fmt(s.subscribers)} pollers ${name} (${fmt(p.intervalMs, 1)} ms): req/s / API instances / API cores`,
        measured: slash(perSecond(p.requestsPerSecond), instances, cores),
        ceiling: `stream: 1 / ${fmt(s.apiCores, 2)}`,
      },
      {
        figure: '  bytes/s polling vs the stream',
        measured: mbps(p.bytesPerSecond),
        ceiling: mbps(s.streamBytesPerSecond),
      },
    );
  }
  return rows;
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
  return [
    {
      title,
      rows: parts.flatMap((rows) => [{ figure: '-' }, ...rows]).slice(1),
      lines: [ceiling],
      notes: r.notes,
    },
    { lines: [r.ok ? 'OK' : 'FAILED'] },
  ];
}
