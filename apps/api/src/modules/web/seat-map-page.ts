import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Injectable } from '@nestjs/common';

/** The HTML and CSS ship beside this file: nest-cli.json copies `assets/` into dist. */
const ASSETS = join(__dirname, 'assets');

/**
 * The page's script, bundled from `page/*.ts` by `npm run build:page` (esbuild). It lands outside
 * nest's outDir, which `nest build` and watch mode empty, at the same place relative to the project
 * root whether this file runs from dist or from source (Jest).
 */
const SCRIPT = join('dist', 'page', 'seat-map.js');

function asset(name: string): string {
  return readFileSync(join(ASSETS, name), 'utf8');
}

/** The bundle in the nearest folder above this file that has one: the project root. */
function findScript(): string | undefined {
  for (let dir = __dirname; ; dir = dirname(dir)) {
    if (existsSync(join(dir, SCRIPT))) return join(dir, SCRIPT);
    if (dirname(dir) === dir) return undefined;
  }
}

function script(): string {
  const file = findScript();
  if (file) return readFileSync(file, 'utf8');
  // From source (Jest's in-process app) the page may be unbuilt and no test loads it there; from
  // dist a missing bundle is a broken build, so the app refuses to start.
  if (__filename.endsWith('.ts')) {
    return "console.error('The seat-map script is not built: run npm run build.');\n";
  }
  throw new Error(`${SCRIPT} is missing: run npm run build (it bundles the seat-map page)`);
}

/**
 * The seat-map page: plain HTML, CSS and one bundled script, read once at start. Small and fixed, so
 * they are served from memory with no static-file machinery.
 */
@Injectable()
export class SeatMapPage {
  readonly html = asset('seat-map.html');
  readonly script = script();
  readonly styles = asset('seat-map.css');
}
