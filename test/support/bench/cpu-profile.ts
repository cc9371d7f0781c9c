import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { ROOT } from './child-processes';
import { round } from './stats';

interface Profile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number } }[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileSummary {
  file: string;
  samplesInWindow: number;
  busyMs: number | null;
  idlePct: number | null;
  topFunctions: { name: string; pctOfBusy: number | null }[];
  topAreas: { name: string; pctOfBusy: number | null }[];
}

/** A frame's area: a package under node_modules, node's core, or a folder of ours. */
function areaOf(name: string, file: string): string {
  if (!file) return name;
  if (file.startsWith('node:')) return 'node: core';
  const pkg = /node_modules\/((@[^/]+\/)?[^/]+)/.exec(file);
  return pkg ? pkg[1] : file.split('/').slice(0, 3).join('/');
}

/**
 * Top self-time functions and areas of a V8 .cpuprofile, counting only the samples inside
 * `window`: V8's profile clock is process.hrtime's, so a window measured by the load generator on
 * the same machine selects the measured part.
 */
export function summarizeProfile(
  file: string,
  window?: { startUs: number; endUs: number },
): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const frames = new Map(profile.nodes.map((node) => [node.id, node.callFrame]));
  const byFunction = new Map<string, number>();
  const byArea = new Map<string, number>();
  const add = (map: Map<string, number>, key: string, us: number) =>
    map.set(key, (map.get(key) ?? 0) + us);
  let [t, busy, idle, inWindow] = [profile.startTime, 0, 0, 0];
  for (let i = 0; i < profile.samples.length; i += 1) {
    t += profile.timeDeltas[i];
    if (window && (t < window.startUs || t > window.endUs)) continue;
    inWindow += 1;
    const us = profile.timeDeltas[i + 1] ?? 0;
    const frame = frames.get(profile.samples[i])!;
    const name = frame.functionName || '(anonymous)';
    if (name === '(idle)') {
      idle += us;
      continue;
    }
    busy += us;
    const url = frame.url.replace(/^file:\/\//, '');
    const short = url.startsWith(ROOT) ? relative(ROOT, url) : url;
    add(byFunction, short ? `${name} ${short}:${frame.lineNumber + 1}` : name, us);
    add(byArea, areaOf(name, short), us);
  }
  const top = (map: Map<string, number>, n: number) =>
    [...map]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([name, us]) => ({ name, pctOfBusy: round((us / busy) * 100, 1) }));
  return {
    file,
    samplesInWindow: inWindow,
    busyMs: round(busy / 1000, 1),
    idlePct: busy + idle ? round((idle / (busy + idle)) * 100, 1) : null,
    topFunctions: top(byFunction, 15),
    topAreas: top(byArea, 10),
  };
}
