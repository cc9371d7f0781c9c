import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Injectable } from '@nestjs/common';

/** The page's files ship beside this one: nest-cli.json copies `assets/` into dist. */
const ASSETS = join(__dirname, 'assets');

function asset(name: string): string {
  return readFileSync(join(ASSETS, name), 'utf8');
}

/**
 * The seat-map page: plain HTML, CSS and one script, read once at start. Small and fixed, so they are
 * served from memory with no static-file machinery.
 */
@Injectable()
export class SeatMapPage {
  readonly html = asset('seat-map.html');
  readonly script = asset('seat-map.js');
  readonly styles = asset('seat-map.css');
}
