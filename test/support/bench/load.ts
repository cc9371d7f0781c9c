import autocannon from 'autocannon';
import type { CpuReport, CpuSampler } from './proc-stats';
import { round } from './stats';

export interface LoadRequest {
  method: 'GET' | 'POST' | 'DELETE';
  path: string;
  headers?: Record<string, string>;
  body?: string;
}

export interface LoadResult {
  connections: number;
  seconds: number;
  /** Answers with the expected status, per second. */
  perSecond: number | null;
  ok: number;
  latencyMs: { p50: number; p99: number; mean: number; max: number };
  statuses: Record<string, number>;
  /** Answers with another status, connection errors and timeouts. */
  errors: number;
  cpu: CpuReport | null;
  /** The measured part on the monotonic clock (µs), to select a CPU profile's samples. */
  window: { startUs: number; endUs: number };
}

function run(url: string, connections: number, seconds: number, next: () => LoadRequest) {
  const setupRequest = (request: autocannon.Request) => {
    const job = next();
    const headers: Record<string, string> = { ...job.headers };
    if (job.body !== undefined) headers['content-type'] = 'application/json';
    return { ...request, method: job.method, path: job.path, headers, body: job.body };
  };
  const requests = [{ setupRequest }];
  return autocannon({ url, connections, duration: seconds, pipelining: 1, timeout: 30, requests });
}

/**
 * `connections` keep-alive connections send `next()` one request at a time each (autocannon):
 * `warmupSeconds` first, not counted, then `seconds` measured, with `sampler` over them.
 */
export async function loadWindow(options: {
  url: string;
  connections: number;
  seconds: number;
  warmupSeconds?: number;
  expected: number;
  next: () => LoadRequest;
  sampler?: CpuSampler;
}): Promise<LoadResult> {
  const { url, connections, seconds, expected, next, sampler } = options;
  if (options.warmupSeconds) await run(url, connections, options.warmupSeconds, next);
  await sampler?.start();
  const startUs = Number(process.hrtime.bigint() / 1000n);
  const result = await run(url, connections, seconds, next);
  const endUs = Number(process.hrtime.bigint() / 1000n);
  const cpu = sampler ? await sampler.stop() : null;
  const statuses: Record<string, number> = {};
  for (const [code, stat] of Object.entries(result.statusCodeStats ?? {})) {
    statuses[code] = stat?.count ?? 0;
  }
  const ok = statuses[String(expected)] ?? 0;
  const elapsed = result.duration || seconds;
  const { p50, p99, mean, max } = result.latency;
  return {
    connections,
    seconds: round(elapsed, 2) ?? seconds,
    perSecond: round(ok / elapsed, 1),
    ok,
    latencyMs: { p50, p99, mean: round(mean, 2) ?? 0, max },
    statuses,
    errors: result.requests.total - ok + result.errors + result.timeouts,
    cpu,
    window: { startUs, endUs },
  };
}
