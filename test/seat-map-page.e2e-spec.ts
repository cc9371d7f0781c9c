import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Browser, BrowserContext } from 'playwright-core';
import { BUILT_MAIN, BuiltApp } from './support/built-app';
import { createEvent, registerCustomer } from './support/fixtures';
import { launchChromium } from './support/headless-chromium';
import { ScriptedSeatStream } from './support/scripted-seat-stream';
import { SeatMapTab } from './support/seat-map-tab';
import { TestApp } from './support/test-app';
import { TEST_ADMIN_TOKEN, testDatabaseUrl, testRedisUrl } from './support/test-env';

/**
 * The seat-map page (`GET /`, issue 14) in a real browser: Debian's Chromium driven by
 * playwright-core. The browser talks to the built API (`npm run build`, as `npm start` serves it, so
 * the page's files must be in dist); the in-process TestApp, on the same database and Redis, creates
 * the events and checks through the API what the page claims. Payments go to the gateway simulator
 * the global setup started (GATEWAY_URL), which the built API inherits.
 */

/**
 * The committed screenshot is refreshed with UPDATE_SCREENSHOT=1; otherwise each run writes to the
 * temp dir, so running the tests never leaves a changed file in the working tree.
 */
const SCREENSHOT = process.env.UPDATE_SCREENSHOT
  ? join(__dirname, '..', 'docs', 'seat-map.png')
  : join(tmpdir(), 'seatlock-seat-map.png');
/** Issue 14: another customer's page shows a hold within a second. */
const LIVE_WITHIN_MS = 1000;
const VIEWPORT = { width: 900, height: 720 };
const OPENAPI_WRITER = join(dirname(BUILT_MAIN), 'openapi', 'write-openapi-document.js');

describe('the seat-map page in headless Chromium', () => {
  let api: TestApp;
  let built: BuiltApp | undefined;
  let browser: Browser | undefined;
  const contexts: BrowserContext[] = [];
  const tabs: SeatMapTab[] = [];

  beforeAll(async () => {
    [api, built, browser] = await Promise.all([
      TestApp.start({ RATE_LIMIT_PER_MINUTE: '0' }),
      BuiltApp.start({
        DATABASE_URL: testDatabaseUrl(),
        REDIS_URL: testRedisUrl(),
        ADMIN_TOKEN: TEST_ADMIN_TOKEN,
        LOG_LEVEL: 'warn',
        MIGRATIONS_RUN: 'false',
        RATE_LIMIT_PER_MINUTE: '0',
      }),
      launchChromium(),
    ]);
  });

  afterEach(() => {
    // Whatever a test did, the page's script never threw.
    expect(tabs.flatMap((tab) => tab.errors)).toEqual([]);
    tabs.length = 0;
  });

  afterAll(async () => {
    for (const context of contexts) await context.close();
    await browser?.close();
    await built?.stop();
    await api?.close();
  });

  /** A new browser context (its own cookies and sessionStorage: another person) with one tab. */
  async function openTab(
    path: string,
    prepare: (context: BrowserContext) => Promise<unknown> = async () => {},
  ): Promise<SeatMapTab> {
    // A fixed locale, so prices and times read the same on every machine.
    const context = await browser!.newContext({ viewport: VIEWPORT, locale: 'en-US' });
    contexts.push(context);
    await prepare(context);
    const tab = await SeatMapTab.open(context, `${built!.url}${path}`);
    tabs.push(tab);
    return tab;
  }

  async function seatStatus(eventId: string, label: string): Promise<string | undefined> {
    const seats = await api.get<{ label: string; status: string }[]>(`/events/${eventId}/seats`);
    return seats.body.find((seat) => seat.label === label)?.status;
  }

  it('is served by the built app as HTML with a policy that allows only its own files', async () => {
    const page = await fetch(`${built!.url}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
    const html = await page.text();
    for (const file of ['/assets/seat-map.js', '/assets/seat-map.css']) {
      expect(html).toContain(file);
      expect((await fetch(`${built!.url}${file}`)).status).toBe(200);
    }
    // Not part of the API: the documented routes stay as they are.
    const doc = (await (await fetch(`${built!.url}/docs-json`)).json()) as {
      paths: Record<string, unknown>;
    };
    expect(Object.keys(doc.paths)).not.toContain('/');
  });

  it('its typed client comes from the document /docs-json serves (written without a server)', async () => {
    // npm run generate:api-types reads the built app's document in Nest's preview mode (no
    // database, Redis or port): it must be the very document the running app serves.
    const file = join(mkdtempSync(join(tmpdir(), 'seatlock-openapi-')), 'openapi.json');
    execFileSync(process.execPath, [OPENAPI_WRITER, file]);
    const served: unknown = await (await fetch(`${built!.url}/docs-json`)).json();
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual(served);
    rmSync(dirname(file), { recursive: true, force: true });
  });

  it('two customers: B sees A’s hold within 1 s and is told the seat is taken; A pays, both see it booked', async () => {
    const eventId = await createEvent(api, [
      { name: 'Stalls', rows: 4, seatsPerRow: 10, priceCents: 4500 },
      { name: 'Balcony', rows: 2, seatsPerRow: 8, priceCents: 2500 },
      { name: 'Standing', capacity: 40, priceCents: 1500 },
    ]);
    // A third customer already holds two seats: the map opens with them held.
    const early = await registerCustomer(api);
    const earlyHold = await api.post(
      '/bookings',
      { eventId, seatIds: ['C7', 'C8'] },
      { token: early.token },
    );
    expect(earlyHold.status).toBe(201);
    // A picks the event from the list; the page's address then names it, and B opens that link.
    const a = await openTab('/');
    await a.register('Ada');
    await a.chooseEvent(eventId);
    expect(a.page.url()).toBe(`${built!.url}/?event=${eventId}`);
    const link = new URL(a.page.url());
    const b = await openTab(`${link.pathname}${link.search}`);
    await b.register('Grace');
    await Promise.all([a.waitForLive(), b.waitForLive()]);
    await expect(b.seat('C7').getAttribute('aria-label')).resolves.toBe('C7, held');
    await expect(b.seat('B5').getAttribute('aria-label')).resolves.toBe('B5, free');
    await expect(
      b.page.locator('section[aria-label="Standing"] .available').innerText(),
    ).resolves.toBe('40 of 40 places left');

    // A chooses B5 and holds it; both pages time the moment B5 turns held on their screen.
    const seenByB = await b.watchSeat('B5', 'held');
    const seenByA = await a.watchSeat('B5', 'held');
    await a.seat('B5').click();
    await expect(a.seat('B5').getAttribute('aria-label')).resolves.toBe('B5, free, chosen');
    const pressed = Date.now();
    await a.page.getByRole('button', { name: 'Hold selected seats' }).click();
    const [heldForA, heldForB] = [await seenByA(), await seenByB()];
    const figures = { aSawItMs: heldForA - pressed, bSawItMs: heldForB - pressed };
    console.log(
      `B's page showed A's hold ${figures.bSawItMs} ms after A pressed Hold ` +
        `(A's own page: ${figures.aSawItMs} ms)`,
    );
    expect(figures.bSawItMs).toBeLessThanOrEqual(LIVE_WITHIN_MS);

    await a.waitForMessage(/^Holding seat B5\. Pay before .+ to keep it\.$/);
    await expect(a.seat('B5').getAttribute('aria-label')).resolves.toBe('B5, held by you');
    await expect(a.hold.innerText()).resolves.toMatch(
      /Seat B5 · €45\.00\s+Held until .+ \(\d:\d\d left\)\./,
    );
    // What A's page shows is what the API holds for A's token.
    const aToken = await a.token();
    const aBookings = await api.get('/bookings', { token: aToken });
    expect(aBookings.body).toEqual([
      expect.objectContaining({ eventId, status: 'held', seats: ['B5'] }),
    ]);

    // B clicks the seat A holds: told in plain words, and nothing is chosen.
    await expect(b.seat('B5').getAttribute('aria-label')).resolves.toBe('B5, held');
    await b.seat('B5').click();
    await expect(b.waitForMessage(/taken/)).resolves.toBe(
      'Seat B5 is taken: someone else is holding it.',
    );
    await expect(b.message.getAttribute('data-kind')).resolves.toBe('error');
    await expect(b.page.locator('#hold-selected').isDisabled()).resolves.toBe(true);

    // A pays with the simulator's test card that succeeds; both pages show the seat booked.
    const bookedForB = await b.watchSeat('B5', 'booked');
    await a.hold.getByRole('combobox', { name: 'Card' }).selectOption('pm_card_visa');
    const paying = Date.now();
    await a.hold.getByRole('button', { name: 'Pay' }).click();
    await expect(a.waitForMessage(/^Paid/)).resolves.toBe('Paid: seat B5, booked for you.');
    const bookedAfterMs = (await bookedForB()) - paying;
    console.log(`B's page showed B5 booked ${bookedAfterMs} ms after A pressed Pay`);
    await expect(a.seat('B5').getAttribute('aria-label')).resolves.toBe('B5, booked by you');
    await expect(b.seat('B5').getAttribute('aria-label')).resolves.toBe('B5, booked');
    await expect(a.hold.getAttribute('data-status')).resolves.toBe('confirmed');
    expect(await seatStatus(eventId, 'B5')).toBe('booked');
    const confirmed = await api.get('/bookings', { token: aToken });
    expect(confirmed.body).toEqual([expect.objectContaining({ status: 'confirmed' })]);
    const payments = await api.get(`/bookings/${confirmed.body[0].id}/payments`, {
      token: aToken,
    });
    expect(payments.body).toEqual([
      expect.objectContaining({ status: 'captured', paymentMethod: 'pm_card_visa' }),
    ]);
    await b.seat('B5').click();
    await expect(b.waitForMessage(/sold/)).resolves.toBe('Seat B5 is taken: it has been sold.');

    // The screenshot: A's page and B's page side by side.
    const shots = await Promise.all([a, b].map((tab) => tab.page.screenshot({ fullPage: true })));
    const sheet = await browser!.newPage({ viewport: { width: 2 * VIEWPORT.width, height: 100 } });
    await sheet.setContent(
      `<body style="margin:0;display:flex;align-items:flex-start;background:#cfd8dc">${shots
        .map(
          (shot) =>
            `<img style="width:${VIEWPORT.width}px" src="data:image/png;base64,${shot.toString('base64')}">`,
        )
        .join('')}</body>`,
    );
    mkdirSync(dirname(SCREENSHOT), { recursive: true });
    await sheet.screenshot({ path: SCREENSHOT, fullPage: true });
    await sheet.close();
  }, 60_000);

  it('applies the stream in order: snapshot, changes (a repeat skipped), a stale notice until the next snapshot after a resume', async () => {
    const eventId = await createEvent(api, [
      { name: 'Floor', rows: 1, seatsPerRow: 6, priceCents: 1000 },
      { name: 'Pit', capacity: 10, priceCents: 500 },
    ]);
    // The page's stream request goes to a scripted server instead: the test writes each message.
    const stream = await ScriptedSeatStream.start();
    try {
      const tab = await openTab(`/?event=${eventId}`, (context) =>
        context.route('**/seats/stream', (route) => route.continue({ url: stream.url })),
      );
      const first = await stream.nextConnection();
      expect(first.lastEventId).toBeUndefined();
      const statuses = ['booked', 'held', 'free', 'free', 'free', 'free'];
      first.send('snapshot', 10, {
        seq: 10,
        seats: statuses.map((status, i) => ({ label: `A${i + 1}`, status })),
        sections: [
          { name: 'Floor', available: 4 },
          { name: 'Pit', available: 7 },
        ],
      });
      first.send('seats', 11, {
        seq: 11,
        changes: [
          { label: 'A2', status: 'free' },
          { label: 'A3', status: 'held' },
        ],
        sections: [{ name: 'Floor', available: 4 }],
      });
      // Sent again (as a resuming server may): already applied, so skipped.
      first.send('seats', 11, {
        seq: 11,
        changes: [{ label: 'A2', status: 'booked' }],
        sections: [{ name: 'Floor', available: 3 }],
      });
      first.send('seats', 12, {
        seq: 12,
        changes: [{ label: 'A6', status: 'booked' }],
        sections: [{ name: 'Floor', available: 3 }],
      });
      await tab.page.locator('#live-status[data-state="live"][data-seq="12"]').waitFor();
      const shown = await tab.page
        .locator('button.seat')
        .evaluateAll((buttons) =>
          buttons.map((b) => `${b.getAttribute('data-label')}:${b.getAttribute('data-status')}`),
        );
      expect(shown).toEqual(['A1:booked', 'A2:free', 'A3:held', 'A4:free', 'A5:free', 'A6:booked']);
      const available = tab.page.locator('.section .available');
      await expect(available.allInnerTexts()).resolves.toEqual([
        '3 of 6 free',
        '7 of 10 places left',
      ]);

      // Stale: a notice that stays through a reconnect until a new snapshot arrives.
      first.send('stale', undefined, { reason: 'Redis unreachable' });
      await tab.page.locator('#live-status[data-state="stale"]').waitFor();
      await expect(tab.liveStatus.innerText()).resolves.toBe(
        'Live updates paused (Redis unreachable): the map may be behind until they resume.',
      );
      first.end();
      const second = await stream.nextConnection();
      expect(second.lastEventId).toBe('12');
      await tab.page.locator('#live-status[data-state="stale"]').waitFor();
      second.send('snapshot', 20, {
        seq: 20,
        seats: statuses.map((_, i) => ({ label: `A${i + 1}`, status: i === 2 ? 'free' : 'held' })),
        sections: [
          { name: 'Floor', available: 1 },
          { name: 'Pit', available: 2 },
        ],
      });
      await tab.page.locator('#live-status[data-state="live"][data-seq="20"]').waitFor();
      await expect(tab.liveStatus.innerText()).resolves.toBe('Live');
      await expect(tab.seat('A3').getAttribute('data-status')).resolves.toBe('free');
      await expect(tab.seat('A1').getAttribute('aria-label')).resolves.toBe('A1, held');
      await expect(available.allInnerTexts()).resolves.toEqual([
        '1 of 6 free',
        '2 of 10 places left',
      ]);
    } finally {
      await stream.close();
    }
  });

  it('without live updates: says so, works from the two GETs, and explains every refusal in plain words', async () => {
    const eventId = await createEvent(api, [
      { name: 'Stalls', rows: 2, seatsPerRow: 6, priceCents: 3000 },
      { name: 'Standing', capacity: 4, priceCents: 1000 },
    ]);
    const tab = await openTab(`/?event=${eventId}`, (context) =>
      context.route('**/seats/stream', (route) =>
        route.fulfill({
          status: 404,
          contentType: 'application/problem+json',
          body: JSON.stringify({ status: 404, code: 'HTTP.NOT_FOUND' }),
        }),
      ),
    );
    await tab.page.locator('#live-status[data-state="unavailable"]').waitFor();
    await expect(tab.liveStatus.innerText()).resolves.toBe(
      'Live updates unavailable: press Refresh to see the latest seats.',
    );

    // Holding before registering asks for a name and email first.
    await tab.seat('A1').click();
    await tab.page.getByRole('button', { name: 'Hold selected seats' }).click();
    await tab.waitForMessage('Register with your name and email first; then you can hold seats.');
    await tab.page.getByRole('button', { name: 'Clear' }).click();
    await tab.register('Dana');

    // Someone else holds A3 meanwhile; this page cannot know, so the server's 409 tells it.
    const other = await registerCustomer(api);
    const taken = await api.post('/bookings', { eventId, seatIds: ['A3'] }, { token: other.token });
    expect(taken.status).toBe(201);
    await expect(tab.seat('A3').getAttribute('data-status')).resolves.toBe('free');
    await tab.seat('A3').click();
    await tab.page.getByRole('button', { name: 'Hold selected seats' }).click();
    await expect(tab.waitForMessage(/taken/)).resolves.toBe(
      'That seat was just taken by someone else: A3.',
    );
    await tab.waitForSeat('A3', 'held');

    // The best two together in Stalls: held, next to each other; a declined card keeps the hold.
    await tab.page.locator('#best-quantity').fill('2');
    await tab.page.locator('#best-section').selectOption('Stalls');
    await tab.page.getByRole('button', { name: 'Find and hold' }).click();
    await tab.waitForMessage(/^Holding seats [A-Z]+\d+, [A-Z]+\d+, next to each other\./);
    const token = await tab.token();
    const [best] = (await api.get('/bookings', { token })).body;
    expect(best.status).toBe('held');
    const [first, second] = (best.seats as string[]).map((label) => /^([A-Z]+)(\d+)$/.exec(label)!);
    expect([second[1], Number(second[2])]).toEqual([first[1], Number(first[2]) + 1]);
    for (const label of best.seats) await tab.waitForSeat(label, 'held');
    await tab.hold.getByRole('combobox', { name: 'Card' }).selectOption('pm_card_declined');
    await tab.hold.getByRole('button', { name: 'Pay' }).click();
    await expect(tab.waitForMessage(/declined/)).resolves.toBe(
      'Your card was declined. Your seats stay held; try another card.',
    );
    await expect(tab.hold.getAttribute('data-status')).resolves.toBe('held');
    expect((await api.get(`/bookings/${best.id}`, { token })).body.status).toBe('held');

    // Released: the seats are free again, on the page (read again) and in the API.
    await tab.hold.getByRole('button', { name: 'Release' }).click();
    await tab.waitForMessage(`Released: seats ${best.seats.join(', ')}.`);
    for (const label of best.seats) {
      await tab.waitForSeat(label, 'free');
      expect(await seatStatus(eventId, label)).toBe('free');
    }
    await tab.page.locator('#holds .hint').filter({ hasText: 'Nothing held yet.' }).waitFor();

    // General admission: more places than are left is sold out; two of four are held.
    const standing = tab.page.locator('section[aria-label="Standing"]');
    await standing.getByRole('spinbutton').fill('5');
    await standing.getByRole('button', { name: 'Hold places' }).click();
    await expect(tab.waitForMessage(/Sold out/)).resolves.toBe('Sold out: only 4 left.');
    await standing.getByRole('spinbutton').fill('2');
    await standing.getByRole('button', { name: 'Hold places' }).click();
    await tab.waitForMessage(/^Holding 2 places in Standing\./);
    await standing.locator('.available').filter({ hasText: '2 of 4 places left' }).waitFor();
    await expect(tab.hold.locator('p').first().innerText()).resolves.toBe(
      '2 general-admission places · €20.00',
    );
  });
});
