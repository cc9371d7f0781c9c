import { randomUUID } from 'node:crypto';
import type { BrowserContext, Locator, Page } from 'playwright-core';

const STEP_TIMEOUT_MS = 10_000;

/** The few DOM names the in-page code below needs: the tests compile without the DOM library. */
interface PageGlobals {
  MutationObserver: new (callback: () => void) => {
    observe(target: unknown, options: { attributes: boolean; attributeFilter: string[] }): void;
    disconnect(): void;
  };
}

/**
 * One browser tab on the seat-map page, driven the way a person uses it: through its form, select
 * and buttons, found by their ids, roles and the seats' `data-label` / `data-status`.
 */
export class SeatMapTab {
  /** Uncaught errors of the page's script, and whatever its Content-Security-Policy blocked. */
  readonly errors: string[] = [];

  private constructor(readonly page: Page) {
    page.setDefaultTimeout(STEP_TIMEOUT_MS);
    page.on('pageerror', (error) => this.errors.push(error.message));
    // Chromium reports each thing the policy refused on the console.
    page.on('console', (message) => {
      if (/Content Security Policy/i.test(message.text())) this.errors.push(message.text());
    });
  }

  static async open(context: BrowserContext, url: string): Promise<SeatMapTab> {
    const tab = new SeatMapTab(await context.newPage());
    await tab.page.goto(url);
    return tab;
  }

  seat(label: string): Locator {
    return this.page.locator(`button.seat[data-label="${label}"]`);
  }

  get message(): Locator {
    return this.page.locator('#message');
  }

  get liveStatus(): Locator {
    return this.page.locator('#live-status');
  }

  /** The one hold card of this tab's customer (the scenarios hold one booking at a time). */
  get hold(): Locator {
    return this.page.locator('#holds .hold');
  }

  /** Registers through the page's form with a fresh email; answers the email. */
  async register(name: string): Promise<string> {
    const email = `${name.toLowerCase()}-${randomUUID().slice(0, 8)}@example.test`;
    await this.page.locator('#register-name').fill(name);
    await this.page.locator('#register-email').fill(email);
    await this.page.getByRole('button', { name: 'Register' }).click();
    await this.page.locator('#signed-in').filter({ hasText: email }).waitFor();
    return email;
  }

  /** The bearer token the page keeps in this tab's sessionStorage. */
  async token(): Promise<string> {
    const stored = await this.page.evaluate<string | null>(
      "sessionStorage.getItem('seatlock.customer')",
    );
    return (JSON.parse(stored ?? '{}') as { token: string }).token;
  }

  /** Picks the event in the page's select, asking for more events until it is listed. */
  async chooseEvent(eventId: string): Promise<void> {
    const select = this.page.locator('#event-select');
    for (;;) {
      await this.page.locator('#event-select[aria-busy="false"]').waitFor();
      if ((await select.locator(`option[value="${eventId}"]`).count()) > 0) break;
      if (await this.page.locator('#more-events').isHidden()) {
        throw new Error(`event ${eventId} is not among the events the page lists`);
      }
      await this.page.locator('#more-events').click();
    }
    await select.selectOption(eventId);
    await this.page.locator('button.seat').first().waitFor();
  }

  /** Waits until the stream is connected and its snapshot is on the map. */
  async waitForLive(): Promise<void> {
    await this.page.locator('#live-status[data-state="live"][data-seq]').waitFor();
  }

  async waitForSeat(label: string, status: string): Promise<void> {
    await this.page
      .locator(`button.seat[data-label="${label}"][data-status="${status}"]`)
      .waitFor();
  }

  async waitForMessage(text: string | RegExp): Promise<string> {
    const message = this.message.filter({ hasText: text });
    await message.waitFor();
    return message.innerText();
  }

  /**
   * Starts watching, inside the page, for the seat to show `status`; the returned function waits for
   * it and answers the page's Date.now() at that moment (the same clock as this process's).
   */
  async watchSeat(label: string, status: string): Promise<() => Promise<number>> {
    const watch = await this.seat(label).evaluateHandle((button, wanted) => {
      const { MutationObserver } = globalThis as unknown as PageGlobals;
      const seat = button as unknown as { dataset: Record<string, string> };
      return {
        seenAt: new Promise<number>((resolve) => {
          const observer = new MutationObserver(() => {
            if (seat.dataset.status !== wanted) return;
            observer.disconnect();
            resolve(Date.now());
          });
          observer.observe(button, { attributes: true, attributeFilter: ['data-status'] });
        }),
      };
    }, status);
    return () => watch.evaluate((watching) => watching.seenAt);
  }

  async close(): Promise<void> {
    await this.page.close();
  }
}
