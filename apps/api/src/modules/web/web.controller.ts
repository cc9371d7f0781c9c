import { Controller, Get, Header } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import { SeatMapPage } from './seat-map-page';

/**
 * The seat-map page and its two files; a browser client of the public API, not part of it. Its
 * Content-Security-Policy and nosniff are set with every answer's: common/http/security-headers.
 */
@ApiExcludeController()
@Controller()
export class WebController {
  constructor(private readonly page: SeatMapPage) {}

  @Get()
  @Header('Content-Type', 'text/html; charset=utf-8')
  @Header('Cache-Control', 'no-cache')
  html(): string {
    return this.page.html;
  }

  @Get('assets/seat-map.js')
  @Header('Content-Type', 'text/javascript; charset=utf-8')
  @Header('Cache-Control', 'no-cache')
  script(): string {
    return this.page.script;
  }

  @Get('assets/seat-map.css')
  @Header('Content-Type', 'text/css; charset=utf-8')
  @Header('Cache-Control', 'no-cache')
  styles(): string {
    return this.page.styles;
  }
}
