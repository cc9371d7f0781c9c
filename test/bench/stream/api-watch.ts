import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import * as http from '../../support/bench/bench-http';
import type { Child } from '../../support/bench/child-processes';
import { memoryStatus } from '../../support/bench/proc-stats';
import { round } from '../../support/bench/stats';
import { clock } from './stream-run';

/* The API watched while it streams: its memory from outside and inside, its sockets' queues. */

/** MiB (what /proc reports) to MB, the suite's unit. */
export const mib = (value: number | null | undefined) => round((value ?? NaN) * 1.048576, 1);
export const rssNow = (pid: number) => mib(memoryStatus(pid)?.rss);

function maxOf(values: (number | null)[]): number | null {
  const known = values.filter((v): v is number => v !== null);
  return known.length ? Math.max(...known) : null;
}

/** Calls `sample` every `ms`, and once more at the stop; the stop answers the samples. */
function every<T>(ms: number, sample: () => T | Promise<T>): () => Promise<T[]> {
  const samples: T[] = [];
  let stopped = false;
  const loop = (async () => {
    for (let at = clock(); !stopped; at = clock()) {
      samples.push(await sample());
      await sleep(Math.max(0, ms - (clock() - at)), undefined, { ref: false });
    }
  })();
  return async () => {
    stopped = true;
    await loop;
    samples.push(await sample());
    return samples;
  };
}

/** The API's own heap and event-loop lag (prom-client's defaults on /metrics), nulls if none. */
async function metricsSample(api: string, seconds: () => number) {
  const answer = await http
    .call<string>(api, 'GET', '/metrics', { timeoutMs: 5_000 })
    .catch(() => null);
  const pick = (name: string) =>
    Number(new RegExp(`^${name}(?:\\{[^}]*\\})?\\s+(\\S+)`, 'm').exec(String(answer?.text))?.[1]);
  return {
    s: seconds(),
    heapUsedMB: round(pick('nodejs_heap_size_used_bytes') / 1e6, 1),
    lagP99Ms: round(pick('nodejs_eventloop_lag_p99_seconds') * 1000, 1),
  };
}

/**
 * The kernel's queues of the streams (/proc/net/tcp, IPv4 loopback): bytes the API handed to the
 * kernel and the subscriber has not acknowledged (server side tx_queue), and bytes that arrived
 * here unread (client side rx_queue). Large server-side queues: the subscribers read too slowly;
 * neither growing while the API's heap does: the API holds what it has not written yet itself.
 */
function socketQueues(port: number, s: number) {
  const hex = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  const [tx, rx]: number[][] = [[], []];
  let lines: string[];
  try {
    lines = readFileSync('/proc/net/tcp', 'utf8').split('\n');
  } catch {
    return null;
  }
  for (const cells of lines.map((line) => line.trim().split(/\s+/))) {
    if (cells.length < 5 || cells[3] !== '01') continue; // ESTABLISHED only
    const [txHex, rxHex] = cells[4].split(':');
    if (cells[1].endsWith(hex)) tx.push(parseInt(txHex, 16));
    else if (cells[2].endsWith(hex)) rx.push(parseInt(rxHex, 16));
  }
  const kb = (bytes: number) => round(bytes / 1024, 1) ?? 0;
  const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);
  return {
    s,
    sockets: tx.length,
    serverTxKB: kb(sum(tx)),
    serverTxMaxKB: kb(Math.max(0, ...tx)),
    clientRxKB: kb(sum(rx)),
    clientRxMaxKB: kb(Math.max(0, ...rx)),
  };
}

/** RSS every 250 ms, /metrics every 500 ms, the socket queues every second, until stopped. */
export function watchApi(api: Child) {
  const start = clock();
  const seconds = () => round((clock() - start) / 1000, 1) ?? 0;
  const rss = every(250, () => memoryStatus(api.pid)?.rss ?? null);
  const heap = every(500, () => metricsSample(api.url, seconds));
  const queues = every(1_000, () => socketQueues(Number(new URL(api.url).port), seconds()));
  return async () => {
    const [rssSamples, heapSamples, queueSamples] = await Promise.all([rss(), heap(), queues()]);
    const samples = queueSamples.filter((q) => q !== null);
    const heaps = heapSamples.map((x) => x.heapUsedMB);
    return {
      rssMaxDuring: mib(maxOf(rssSamples)),
      heap: {
        maxHeapUsedMB: maxOf(heaps),
        lastHeapUsedMB: heaps.filter((x) => x !== null).at(-1) ?? null,
        samples: heapSamples,
      },
      socketQueues: {
        maxServerTxKB: maxOf(samples.map((x) => x.serverTxKB)),
        maxClientRxKB: maxOf(samples.map((x) => x.clientRxKB)),
        samples,
      },
      lagP99MaxMs: maxOf(heapSamples.map((x) => x.lagP99Ms)),
    };
  };
}
