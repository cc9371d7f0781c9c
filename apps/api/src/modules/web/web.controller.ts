import { Controller, Get, Header } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import { SeatMapPage } from './seat-map-page';

/**
 * The page may run only its own script and styles and talk only to this origin, so a seat or event
 * name can never become code; the script adds every listener itself (no inline handlers).
 */
const PAGE_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  "img-src 'self' data:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** The seat-map page and its two files; a browser client of the public API, not part of it. */
@ApiExcludeController()
@Controller()
export class WebController {
  constructor(private readonly page: SeatMapPage) {}

  @Get()
  @Header('Content-Type', 'text/html; charset=utf-8')
  @Header('Content-Security-Policy', PAGE_POLICY)
  @Header('X-Content-Type-Options', 'nosniff')
  @Header('Cache-Control', 'no-cache')
  html(): string {
    return this.page.html;
  }

  @Get('assets/seat-map.js')
  @Header('Content-Type', 'text/javascript; charset=utf-8')
  @Header('X-Content-Type-Options', 'nosniff')
  @Header('Cache-Control', 'no-cache')
  script(): string {
    return this.page.script;
  }

  @Get('assets/seat-map.css')
  @Header('Content-Type', 'text/css; charset=utf-8')
  @Header('X-Content-Type-Options', 'nosniff')
  @Header('Cache-Control', 'no-cache')
  styles(): string {
    return this.page.styles;
  }
}
