import { Agent, type Dispatcher, request } from 'undici';
import { call } from './bench-http';
import { withTimeout } from './cli';
import { machineBusySeconds } from './proc-stats';
import { type LatencySummary, latencySummary, mapLimit, round } from './stats';

/* Waves of requests (N customers press "book" at once) on pre-opened keep-alive connections. */

/** One request of a wave: a customer's token and its JSON body (POST /bookings by default). */
export interface WaveRequest {
  token: string;
  body?: unknown;
  method?: Dispatcher.HttpMethod;
  path?: string;
}

/** A request's outcome: its status ('error:<code>' when no answer came) and body text. */
export type Reply = { status: string; text: string };

/** `ms` from sending to the whole answer, `end` from the wave's start. */
export type Shot<T = WaveRequest> = T & Reply & { ms: number; end: number };

export interface WaveResult<T> {
  shots: Shot<T>[];
  wallMs: number;
  /** Busy cores of the whole machine during the wave; null off Linux. */
  machineCores: number | null;
}

/**
 * An agent with `connections` keep-alive connections, opened first (unless `open: false`) on
 * GET /health/live, which does not touch PostgreSQL: the wave measures requests, not handshakes.
 */
export async function waveAgent(
  api: string,
  connections: number,
  options: { open?: boolean; timeoutMs?: number } = {},
): Promise<Agent> {
  const timeoutMs = options.timeoutMs ?? 180_000;
  const agent = new Agent({
    connections,
    keepAliveTimeout: timeoutMs,
    keepAliveMaxTimeout: timeoutMs,
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
  });
  if (options.open === false) return agent;
  const live = Array.from({ length: connections }, () =>
    call(api, 'GET', '/health/live', { dispatcher: agent, timeoutMs: 60_000 }),
  );
  await withTimeout(Promise.all(live), 90_000, 'opening connections');
  return agent;
}

/** One request on `agent`; never throws. */
export async function send(
  agent: Dispatcher,
  api: string,
  req: WaveRequest,
  timeoutMs?: number,
): Promise<Reply> {
  const headers: Record<string, string> = { authorization: `Bearer ${req.token}` };
  if (req.body !== undefined) headers['content-type'] = 'application/json';
  try {
    const response = await request(`${api}${req.path ?? '/bookings'}`, {
      method: req.method ?? 'POST',
      headers,
      body: req.body === undefined ? undefined : JSON.stringify(req.body),
      dispatcher: agent,
      signal: timeoutMs ? AbortSignal.timeout(timeoutMs) : undefined,
    });
    return { status: String(response.statusCode), text: await response.body.text() };
  } catch (error) {
    const { code, name, message } = error as NodeJS.ErrnoException;
    return { status: `error:${code ?? name}`, text: message };
  }
}

/**
 * Fires `requests` all at once, or at most `concurrency` in flight. `onAnswer` sees the running
 * count of HTTP answers, e.g. to inject a fault mid-wave.
 */
export async function fireWave<T extends WaveRequest>(options: {
  api: string;
  agent: Dispatcher;
  requests: readonly T[];
  concurrency?: number;
  timeoutMs?: number;
  onAnswer?: (answered: number, elapsedMs: number) => void;
}): Promise<WaveResult<T>> {
  const { api, agent, requests, onAnswer } = options;
  let answered = 0;
  const wallStart = performance.now();
  const shoot = async (req: T): Promise<Shot<T>> => {
    const started = performance.now();
    const reply = await send(agent, api, req);
    const now = performance.now();
    if (!reply.status.startsWith('error')) {
      answered += 1;
      onAnswer?.(answered, now - wallStart);
    }
    return { ...req, ...reply, ms: now - started, end: now - wallStart };
  };
  const busyBefore = machineBusySeconds();
  const all = mapLimit(requests, options.concurrency ?? requests.length, shoot);
  const shots = await withTimeout(all, options.timeoutMs ?? 180_000, 'the wave');
  const wallMs = performance.now() - wallStart;
  const busyAfter = machineBusySeconds();
  const machineCores =
    busyBefore === null || busyAfter === null
      ? null
      : round((busyAfter - busyBefore) / (wallMs / 1000), 2);
  return { shots, wallMs, machineCores };
}

/** A reply's body as JSON, or {} (a network error, a proxy's page). */
export function parseBody<B = Record<string, any>>(text: string): Partial<B> {
  try {
    const body: unknown = JSON.parse(text);
    return body && typeof body === 'object' ? (body as Partial<B>) : {};
  } catch {
    return {};
  }
}

export interface WaveTally {
  /** Replies by status ('201', '409', 'error:ECONNRESET', ...). */
  statuses: Record<string, number>;
  /** Replies by codeOf: '201', '409 BOOKING.SOLD_OUT', '500 -', ... */
  codes: Record<string, number>;
  /** The first body (300 characters) of each key of `codes`. */
  samples: Record<string, string>;
  latency: LatencySummary;
}

/** A 2xx status alone, any other with its problem code ('-' when none). */
export function codeOf(shot: Reply): string {
  if (shot.status.startsWith('2')) return shot.status;
  return `${shot.status} ${parseBody<{ code: string }>(shot.text).code ?? '-'}`;
}

export function tallyShots(shots: readonly (Reply & { ms: number })[]): WaveTally {
  const statuses: Record<string, number> = {};
  const codes: Record<string, number> = {};
  const samples: Record<string, string> = {};
  for (const shot of shots) {
    const code = codeOf(shot);
    statuses[shot.status] = (statuses[shot.status] ?? 0) + 1;
    codes[code] = (codes[code] ?? 0) + 1;
    samples[code] ??= shot.text.slice(0, 300);
  }
  return { statuses, codes, samples, latency: latencySummary(shots.map((shot) => shot.ms)) };
}
