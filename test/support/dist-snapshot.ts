import {
  cpSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  statSync,
  symlinkSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const ROOT = resolve(__dirname, '..', '..');

/** Every file under `dir` with its size and mtime: to see whether a build ran meanwhile. */
function fingerprint(dir: string): string {
  const files = readdirSync(dir, { recursive: true }).map(String).sort();
  const stats = files.map((file) => [file, statSync(join(dir, file))] as const);
  return stats.map(([file, stat]) => `${file}:${stat.size}:${stat.mtimeMs}`).join('\n');
}

/**
 * A private copy of dist/ in a temp dir (node_modules linked beside it), so that an `npm run
 * build` elsewhere on the machine cannot empty the build under a long run that restarts the
 * apps. Waits (up to 3 min) until every file of `entries` (paths under dist/) exists, and copies
 * again when dist/ changed while it was copied. `files` has `entries` in the copy; `remove()`
 * deletes it (synchronous, so an 'exit' handler can call it too).
 */
export async function snapshotDist<K extends string>(
  entries: Record<K, string>,
  log: (message: string) => void = () => undefined,
): Promise<{ files: Record<K, string>; remove: () => void }> {
  const source = join(ROOT, 'dist');
  const missing = () => Object.values<string>(entries).find((f) => !existsSync(join(source, f)));
  const deadline = Date.now() + 180_000;
  for (let attempt = 1; attempt <= 10; attempt += 1) {
    for (let file = missing(); file; file = missing()) {
      if (Date.now() > deadline) throw new Error(`dist/${file} is missing: npm run build`);
      await sleep(1_000);
    }
    const dir = mkdtempSync(join(tmpdir(), 'seatlock-dist-'));
    const remove = (): void => rmSync(dir, { recursive: true, force: true });
    try {
      const before = fingerprint(source);
      cpSync(source, join(dir, 'dist'), { recursive: true });
      await sleep(500);
      if (before === fingerprint(source) && !missing()) {
        symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir');
        const copied = Object.entries<string>(entries).map(([k, f]) => [k, join(dir, 'dist', f)]);
        return { files: Object.fromEntries(copied) as Record<K, string>, remove };
      }
    } catch (error) {
      if (attempt >= 10) throw error; // a build removing files under the copy: copy again
    }
    remove();
    log('dist/ changed while it was copied (a build running?); copying again');
    await sleep(2_000);
  }
  throw new Error('dist/ kept changing (someone is building)');
}
