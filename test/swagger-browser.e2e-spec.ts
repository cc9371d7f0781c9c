import { tmpdir } from 'node:os';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Browser, Locator, Page } from 'playwright-core';
import { BuiltApp } from './support/built-app';
import { launchChromium } from './support/headless-chromium';
import { createEvent, registerCustomer, type Customer } from './support/fixtures';
import { TestApp } from './support/test-app';
import { TEST_ADMIN_TOKEN, testDatabaseUrl, testRedisUrl } from './support/test-env';

/**
 * Swagger UI in a real browser: Debian's Chromium driven by playwright-core (which downloads no
 * browser). A user opens /docs, authorizes with a customer token, and books a seat with "Try it out".
 *
 * The browser talks to the built API (`npm run build`, as `npm start` serves it): its OpenAPI document
 * carries what the @nestjs/swagger compiler plugin adds at build time (DTO schemas, response types,
 * query parameters), which the in-process TestApp, compiled by SWC without the plugin, lacks. The
 * TestApp, on the same database and Redis, creates the fixtures and checks the result through the API.
 */
/**
 * The committed screenshot is refreshed with UPDATE_SCREENSHOT=1; otherwise each run writes to the
 * temp dir, so running the tests never leaves a changed file in the working tree.
 */
const SCREENSHOT = process.env.UPDATE_SCREENSHOT
  ? join(__dirname, '..', 'docs', 'swagger-ui.png')
  : join(tmpdir(), 'seatlock-swagger-ui.png');
const STEP_TIMEOUT_MS = 10_000;

/** One operation's block in Swagger UI, e.g. `operation(page, 'get', '/events')`. */
function operation(page: Page, method: string, path: string): Locator {
  return page.locator(`.opblock.opblock-${method}`, {
    has: page.locator(`.opblock-summary-path[data-path="${path}"]`),
  });
}

/** Expands the operation, presses "Try it out", lets `edit` fill it in, presses "Execute". */
async function tryItOut(
  block: Locator,
  edit: (block: Locator) => Promise<void> = async () => {},
): Promise<{ status: string; undocumented: boolean; body: string; curl: string }> {
  await block.locator('.opblock-summary-control').click();
  await block.locator('button.try-out__btn').click();
  await edit(block);
  await block.locator('button.execute').click();
  const response = block.locator('.live-responses-table .response').first();
  await response.waitFor();
  return {
    status: (await response.locator('.response-col_status').innerText()).trim(),
    // Swagger UI marks an answer whose status the OpenAPI document does not list.
    undocumented: (await response.locator('.response-undocumented').count()) > 0,
    body: await response
      .locator('.response-col_description .highlight-code pre')
      .first()
      .innerText(),
    curl: await block.locator('.curl-command').innerText(),
  };
}

/** Where `eventId` stands in GET /events (sorted by start, then id), read through the API. */
async function offsetOf(api: TestApp, eventId: string): Promise<number> {
  for (let offset = 0; ; offset += 100) {
    const page = await api.get<{ id: string }[]>(`/events?limit=100&offset=${offset}`);
    const index = page.body.findIndex((event) => event.id === eventId);
    if (index >= 0) return offset + index;
    if (page.body.length < 100) throw new Error(`event ${eventId} is not listed by GET /events`);
  }
}

describe('Swagger UI in headless Chromium', () => {
  let api: TestApp;
  let built: BuiltApp | undefined;
  let browser: Browser | undefined;
  let eventId: string;
  let eventName: string;
  let customer: Customer;

  beforeAll(async () => {
    [api, built] = await Promise.all([
      TestApp.start({ RATE_LIMIT_PER_MINUTE: '0' }),
      BuiltApp.start({
        DATABASE_URL: testDatabaseUrl(),
        REDIS_URL: testRedisUrl(),
        ADMIN_TOKEN: TEST_ADMIN_TOKEN,
        LOG_LEVEL: 'warn',
        MIGRATIONS_RUN: 'false',
        RATE_LIMIT_PER_MINUTE: '0',
      }),
    ]);
    eventId = await createEvent(api);
    eventName = (await api.get(`/events/${eventId}`)).body.name;
    customer = await registerCustomer(api);
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    await built?.stop();
    await api?.close();
  });

  it('authorizes, lists events and holds a seat through "Try it out"', async () => {
    const page = await browser!.newPage({ viewport: { width: 1280, height: 900 } });
    page.setDefaultTimeout(STEP_TIMEOUT_MS);
    const pageErrors: string[] = [];
    page.on('pageerror', (error) => pageErrors.push(error.message));
    // Chromium reports each thing the Content-Security-Policy blocked on the console.
    const blocked: string[] = [];
    page.on('console', (message) => {
      if (/Content Security Policy/i.test(message.text())) blocked.push(message.text());
    });

    const opened = await page.goto(`${built!.url}/docs`);
    // Served under a policy (so "nothing blocked" below means something).
    expect(opened?.headers()['content-security-policy']).toContain("frame-ancestors 'none'");
    await page.locator('.swagger-ui .info .title').filter({ hasText: 'Seatlock' }).waitFor();
    await operation(page, 'post', '/bookings').waitFor();

    // Authorize with the customer's bearer token.
    await page.locator('.auth-wrapper button.authorize').click();
    const dialog = page.locator('.dialog-ux .modal-ux');
    await dialog.locator('#auth-bearer-value').fill(customer.token);
    await dialog.locator('.auth-btn-wrapper button.authorize').click();
    await dialog.locator('.auth-btn-wrapper button.btn-done').click();
    await dialog.waitFor({ state: 'detached' });
    await expect(page.locator('.auth-wrapper button.authorize.locked').count()).resolves.toBe(1);

    // GET /events: public, answers the event just created. Other test files share the database,
    // so the page that holds it is asked for (limit 1 at its offset), typed into the form.
    const offset = await offsetOf(api, eventId);
    const listing = operation(page, 'get', '/events');
    const events = await tryItOut(listing, async (block) => {
      await block.locator('tr[data-param-name="limit"] input').fill('1');
      await block.locator('tr[data-param-name="offset"] input').fill(String(offset));
    });
    expect(events).toMatchObject({ status: '200', undocumented: false });
    // limit and offset have defaults: optional, not "* required".
    await expect(listing.locator('tr[data-param-name="limit"]').count()).resolves.toBe(1);
    await expect(listing.locator('.parameter__name.required').count()).resolves.toBe(0);
    expect(events.body).toContain(eventName);
    expect(events.body).toContain(eventId);

    // POST /bookings: the token is sent, and the seat is held.
    const hold = await tryItOut(operation(page, 'post', '/bookings'), async (block) => {
      const body = block.locator('textarea.body-param__text');
      // The example Swagger UI offers comes from the documented schema.
      expect(JSON.parse(await body.inputValue())).toEqual({
        eventId: expect.any(String),
        seatIds: [expect.any(String)],
      });
      await body.fill(JSON.stringify({ eventId, seatIds: ['A1'] }));
    });
    expect(hold.curl).toContain(`Authorization: Bearer ${customer.token}`);
    expect(hold).toMatchObject({ status: '201', undocumented: false });
    expect(hold.body).toContain('"held"');
    const booking = JSON.parse(hold.body) as { id: string; status: string; seats: unknown };
    expect(booking.status).toBe('held');

    // Not just what the page shows: the booking exists, held by this customer, on seat A1.
    const stored = await api.get(`/bookings/${booking.id}`, { token: customer.token });
    expect(stored.status).toBe(200);
    expect(stored.body).toMatchObject({ id: booking.id, status: 'held', eventId });
    expect(JSON.stringify(stored.body.seats)).toContain('A1');
    const seats = await api.get(`/events/${eventId}/seats`);
    expect(seats.body.find((s: { label: string }) => s.label === 'A1')?.status).toBe('held');

    // The screenshot: the two operations, from the top of the page to the hold's answer, with the
    // other tags and the schemas collapsed as a reader would (the whole page is ~11,000 px tall).
    for (const tag of await page.locator('h3.opblock-tag').all()) {
      const name = await tag.getAttribute('data-tag');
      if (name !== 'events' && name !== 'bookings') await tag.click();
    }
    await page.locator('section.models.is-open h4').click();
    const bottom = await operation(page, 'post', '/bookings')
      .locator('.live-responses-table')
      .evaluate(
        (table) =>
          table.getBoundingClientRect().bottom +
          (globalThis as unknown as { scrollY: number }).scrollY,
      );
    mkdirSync(dirname(SCREENSHOT), { recursive: true });
    await page.screenshot({
      path: SCREENSHOT,
      fullPage: true,
      clip: { x: 0, y: 0, width: 1280, height: Math.ceil(bottom) + 16 },
    });
    expect(pageErrors).toEqual([]);
    expect(blocked).toEqual([]);
  }, 45_000);
});
