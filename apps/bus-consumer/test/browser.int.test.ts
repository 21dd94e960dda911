import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from '@livebus/test-support';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { type GatewayHandle, numbered, startGateway } from './helpers';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const bundle = join(__dirname, '..', 'dist', 'browser', 'livebus.global.js');

/** Serves a blank page and the <script> build of the client. */
async function servePage(): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    if (req.url === '/livebus.global.js') {
      res.writeHead(200, { 'content-type': 'text/javascript' });
      res.end(readFileSync(bundle));
      return;
    }
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end('<!doctype html><html><head><script src="/livebus.global.js"></script></head><body>livebus</body></html>');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, url: `http://127.0.0.1:${(server.address() as { port: number }).port}/` };
}

describe('the browser build in headless Chromium', () => {
  let browser: BrowserContext;
  let page: Page;
  let g: GatewayHandle;
  let web: { server: Server; url: string };
  let profile: string;

  beforeAll(async () => {
    if (!existsSync(CHROMIUM))
      throw new Error(`Chromium not found at ${CHROMIUM}: install the Debian package chromium`);
    g = await startGateway();
    web = await servePage();
    profile = mkdtempSync(join(tmpdir(), 'livebus-chromium-'));
    // A fresh profile per run (playwright passes it as --user-data-dir).
    browser = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
      ],
    });
    page = await browser.newPage();
    await page.goto(web.url);
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await new Promise<void>((r) => web?.server.close(() => r()));
    await g?.stop();
    if (profile) rmSync(profile, { recursive: true, force: true });
  });

  it('connects, receives an event, and survives a gateway restart', async () => {
    await page.evaluate(
      ({ url }) => {
        const w = globalThis as unknown as Record<string, unknown> & { Livebus: typeof import('../src/browser') };
        // Record what the page sends, to see the app-level pings.
        const sent: string[] = [];
        w.sent = sent;
        const ws = (globalThis as unknown as { WebSocket: { prototype: { send(d: string): void } } }).WebSocket;
        const send = ws.prototype.send;
        ws.prototype.send = function (this: unknown, d: string) {
          sent.push(d);
          send.call(this, d);
        };
        const client = new w.Livebus.BusConsumer({
          url,
          userId: 'browser-user',
          minReconnectDelayMs: 20,
          maxReconnectDelayMs: 100,
          pingIntervalMs: 100,
          pingTimeoutMs: 1_000,
        });
        const received: string[] = [];
        w.received = received;
        w.client = client;
        client.on('session.notice', (data) => received.push(data.message));
        return client.connect();
      },
      { url: g.url },
    );
    const state = () => page.evaluate(() => (globalThis as unknown as { client: { state: string } }).client.state);
    const received = () => page.evaluate(() => (globalThis as unknown as { received: string[] }).received);
    expect(await state()).toBe('open');

    await g.gw.publish('browser-user', numbered(1));
    await waitFor(async () => (await received()).length === 1, 'first event in the browser');

    await g.restart();
    await waitFor(
      async () =>
        page.evaluate(() => {
          const c = (globalThis as unknown as { client: { state: string; counters: { reconnects: number } } }).client;
          return c.state === 'open' && c.counters.reconnects === 1;
        }),
      'browser client reconnected',
      10_000,
    );
    await g.gw.publish('browser-user', numbered(2));
    await waitFor(async () => (await received()).length === 2, 'event after the restart');
    expect(await received()).toEqual(['1', '2']);
    // Browsers cannot send protocol pings: the client sends ping frames, and the gateway's pongs keep
    // it alive well past its 1 s ping timeout.
    await new Promise((r) => setTimeout(r, 1_500));
    const sent = await page.evaluate(() => (globalThis as unknown as { sent: string[] }).sent);
    expect(sent.filter((f) => f.startsWith('{"type":"ping"')).length).toBeGreaterThan(5);
    expect(await state()).toBe('open');
    const reconnects = await page.evaluate(
      () => (globalThis as unknown as { client: { counters: { reconnects: number } } }).client.counters.reconnects,
    );
    expect(reconnects).toBe(1);
  });
});
