import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { connectAs, httpJson, startGateway, type TestGateway } from './helpers';

// What the page functions below use of the DOM (they run in Chromium; the gateway's tsconfig has no DOM lib).
interface Node {
  textContent: string | null;
  getAttribute(name: string): string | null;
}
declare const document: {
  querySelector(s: string): Node | null;
  querySelectorAll(s: string): Iterable<Node> & { length: number };
};

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ADMIN = 'dashboard-admin-token-0123456789';
// UPDATE_SCREENSHOT=1 refreshes the picture in docs/; otherwise it goes to a temporary folder.
const SHOT_DIR = process.env.UPDATE_SCREENSHOT ? join(__dirname, '..', '..', '..', 'docs', 'images') : tmpdir();

describe('/dashboard in headless Chromium', () => {
  let g: TestGateway;
  let browser: BrowserContext;
  let page: Page;
  let profile: string;

  beforeAll(async () => {
    if (!existsSync(CHROMIUM))
      throw new Error(`Chromium not found at ${CHROMIUM}: install the Debian package chromium`);
    g = await startGateway({ adminToken: ADMIN, detachDelayMs: 200 });
    profile = mkdtempSync(join(tmpdir(), 'livebus-dashboard-'));
    browser = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      viewport: { width: 1280, height: 800 },
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
    });
    page = await browser.newPage();
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await g?.close();
    if (profile) rmSync(profile, { recursive: true, force: true });
  });

  it('the stream needs the admin token; the page holds no data and allows no third-party code', async () => {
    expect((await httpJson(`${g.http}/dashboard/stream`)).status).toBe(401);
    const res = await fetch(`${g.http}/dashboard`);
    expect(res.status).toBe(200);
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("default-src 'none'");
    expect(csp).not.toMatch(/https?:/);
    const html = await res.text();
    expect(html).not.toMatch(/<script[^>]+src=|<link[^>]+href="(?!data:)/);
  });

  it('asks for the token, then shows a disconnect caused by the test within seconds', async () => {
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => {
      // The first, token-less attempt is refused by design: that is what brings up the form.
      if (m.type() === 'error' && !m.text().includes('401')) errors.push(m.text());
    });
    const requested: string[] = [];
    page.on('request', (r) => requested.push(r.url()));

    await page.goto(`${g.http}/dashboard`);
    await page.waitForSelector('#login:not([hidden])', { timeout: 10_000 });
    await page.fill('#token', ADMIN);
    await page.click('#login button');
    await page.waitForFunction(() => document.querySelector('#instances td')?.textContent === 'gw-test', undefined, {
      timeout: 10_000,
    });

    const { client } = await connectAs(g.url, 'dash-user');
    await page.waitForFunction(
      () => document.querySelector('#cards')?.textContent?.includes('1connections (this instance)'),
      undefined,
      { timeout: 5_000 },
    );
    client.ws.terminate(); // a 1006 as the gateway sees it
    await page.waitForFunction(
      () =>
        [...document.querySelectorAll('#top tr')].some((tr) => tr.textContent === 'dash-user1') &&
        document.querySelector('#reasons')?.textContent?.includes('abnormal_closure1') &&
        document.querySelectorAll('#chart rect').length > 0,
      undefined,
      { timeout: 5_000 },
    );
    // The detach runs after DETACH_DELAY_MS and is counted as executed.
    await page.waitForFunction(
      () => document.querySelector('#cards')?.textContent?.includes('1detach executed'),
      undefined,
      { timeout: 5_000 },
    );

    // The token travels in a header only: no URL the page requested carries it.
    expect(requested.filter((u) => u.includes(ADMIN))).toEqual([]);
    expect(errors).toEqual([]);

    // Some ordinary traffic for the picture: tabs closed and reopened within the detach delay.
    for (const uid of ['alice', 'bob', 'carol', 'alice']) {
      await (await connectAs(g.url, uid)).client.close(1001);
      const again = await connectAs(g.url, uid);
      if (uid !== 'carol') await again.client.close(1000);
    }
    await page.waitForFunction(() => document.querySelector('#cards')?.textContent?.includes('cancelled'));

    // Events to carol's open session: the events/s sparkline and the delivery p50 / p99 cards fill in.
    for (let i = 0; i < 20; i++) {
      await g.gw.publish('carol', { event: 'session.notice', data: { level: 'info', message: `n${i}` } });
    }
    await page.waitForFunction(
      () =>
        /^\d+(\.\d+)?delivery p99 \(ms, 1 min\)$/.test(
          [...document.querySelectorAll('#cards .card')].find((c) => c.textContent?.includes('delivery p99'))
            ?.textContent ?? '',
        ) && (document.querySelector('#spark polyline:last-of-type')?.getAttribute('points') ?? '') !== '',
      undefined,
      { timeout: 15_000 },
    );
    await new Promise((r) => setTimeout(r, 1_500));
    mkdirSync(SHOT_DIR, { recursive: true });
    await page.screenshot({ path: join(SHOT_DIR, 'dashboard.png'), fullPage: true });
  }, 30_000);
});
