import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { ROOT } from './child-processes';
import { round } from './stats';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

interface Profile {
  nodes: ProfileNode[];
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
 * [startUs, endUs] — V8's profile clock is the monotonic clock of process.hrtime, so a window
 * measured by the load generator on the same machine selects the measured part.
 */
export function summarizeProfile(
  file: string,
  window?: { startUs: number; endUs: number },
): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
  const byFunction = new Map<string, number>();
  const byArea = new Map<string, number>();
  let t = profile.startTime;
  let busy = 0;
  let idle = 0;
  let inWindow = 0;
  for (let i = 0; i < profile.samples.length; i += 1) {
    t += profile.timeDeltas[i];
    if (window && (t < window.startUs || t > window.endUs)) continue;
    inWindow += 1;
    const us = profile.timeDeltas[i + 1] ?? 0;
    const frame = (nodes.get(profile.samples[i]) as ProfileNode).callFrame;
    const name = frame.functionName || '(anonymous)';
    if (name === '(idle)') {
      idle += us;
      continue;
    }
    busy += us;
    const url = frame.url.replace(/^file:\/\//, '');
    const short = url.startsWith(ROOT) ? relative(ROOT, url) : url;
    const key = short ? `${name} ${short}:${frame.lineNumber + 1}` : name;
    byFunction.set(key, (byFunction.get(key) ?? 0) + us);
    const area = areaOf(name, short);
    byArea.set(area, (byArea.get(area) ?? 0) + us);
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
