import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTcpProxy, waitFor } from '@livebus/test-support';
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

  it('cannot see a refused upgrade (keeps retrying with backoff), but does see an auth failure reason', async () => {
    const wrong = g.url.replace(/\/ws$/, '/wrong');
    const outcome = await page.evaluate(
      async ({ wrong, url }) => {
        const w = globalThis as unknown as { Livebus: typeof import('../src/browser') };
        const fast = { minReconnectDelayMs: 20, maxReconnectDelayMs: 50 };
        // A 404 to the upgrade looks like any network failure (1006) to a browser: it retries.
        const lost = new w.Livebus.BusConsumer({ url: wrong, userId: 'b', ...fast });
        const closes: Array<{ code: number; willReconnect: boolean }> = [];
        lost.onClient('close', (c) => closes.push({ code: c.code, willReconnect: c.willReconnect }));
        lost.onClient('error', () => {});
        void lost.connect().catch(() => {});
        await new Promise<void>((resolve) => {
          const off = lost.onClient('close', () => {
            if (closes.length >= 3) {
              off();
              resolve();
            }
          });
        });
        const stateWhileRetrying = lost.state;
        lost.close();
        // The reason of a 4001 comes in the close frame, which browsers do show.
        const refused = new w.Livebus.BusConsumer({ url, token: 'x'.repeat(129), ...fast });
        refused.onClient('error', () => {});
        const error = await refused.connect().then(
          () => undefined,
          (e: { name: string; code: string }) => ({ name: e.name, code: e.code }),
        );
        return { closes: closes.slice(0, 3), stateWhileRetrying, error };
      },
      { wrong, url: g.url },
    );
    expect(outcome.closes).toEqual([
      { code: 1006, willReconnect: true },
      { code: 1006, willReconnect: true },
      { code: 1006, willReconnect: true },
    ]);
    expect(outcome.stateWhileRetrying).toBe('reconnecting');
    expect(outcome.error).toEqual({ name: 'ConnectError', code: 'invalid_subject' });
  });

  it('in a throttled background tab: no false ping timeout, and a dead gateway is still detected', async () => {
    // Chrome runs a hidden tab's timers about once a minute. Scaled down: every timer of the page fires
    // only at the next multiple of ALIGN_MS, while both sides ping every 300 ms with a 1 500 ms timeout
    // (shorter than ALIGN_MS, so the page's own timers cannot keep it alive; long enough that a busy
    // machine, every suite running at once, delays no pong past it).
    const ALIGN_MS = 2_000;
    const PING = { pingIntervalMs: 300, pingTimeoutMs: 1_500 };
    const gw = await startGateway(PING);
    const proxy = await startTcpProxy(gw.port);
    const tab = await browser.newPage();
    type Page = {
      client: { state: string; counters: { reconnects: number; lastCloseReason?: string } };
      closes: Array<{ reason: string; at: number }>;
      serverPings: number[];
      received: string[];
    };
    // Runs `fn` in the page on its globals (serialized, so it closes over nothing).
    const read = <T>(fn: (w: Page) => T): Promise<T> => tab.evaluate(`(${fn.toString()})(globalThis)`) as Promise<T>;
    try {
      await tab.addInitScript((align: number) => {
        const w = globalThis as unknown as Record<string, unknown>;
        const realSetTimeout = globalThis.setTimeout.bind(globalThis);
        const realClearTimeout = globalThis.clearTimeout.bind(globalThis);
        /** Delay until the first multiple of `align` at or after `ms` from now. */
        const aligned = (ms: number | undefined) => {
          const now = Date.now();
          return Math.ceil((now + Math.max(0, ms ?? 0)) / align) * align - now;
        };
        // Intervals become chains of aligned timeouts, with ids apart from the real ones.
        const intervals = new Map<number, ReturnType<typeof setTimeout>>();
        let nextInterval = 1_000_000_000;
        w.setTimeout = (fn: (...a: unknown[]) => void, ms?: number, ...args: unknown[]) =>
          realSetTimeout(fn, aligned(ms), ...args);
        w.setInterval = (fn: (...a: unknown[]) => void, ms?: number, ...args: unknown[]) => {
          const id = nextInterval++;
          const tick = () => {
            intervals.set(id, realSetTimeout(tick, aligned(ms)));
            fn(...args);
          };
          intervals.set(id, realSetTimeout(tick, aligned(ms)));
          return id;
        };
        const clear = (id: number | undefined) => {
          const interval = id === undefined ? undefined : intervals.get(id);
          if (interval !== undefined && id !== undefined) {
            realClearTimeout(interval);
            intervals.delete(id);
          } else realClearTimeout(id);
        };
        w.clearTimeout = clear;
        w.clearInterval = clear;
        // Record the gateway's app-level pings (network events are not throttled, timers are).
        const serverPings: number[] = [];
        w.serverPings = serverPings;
        const Native = (globalThis as unknown as { WebSocket: typeof WebSocket }).WebSocket;
        w.WebSocket = class extends Native {
          constructor(url: string | URL, protocols?: string | string[]) {
            super(url, protocols);
            this.addEventListener('message', (e) => {
              if ((JSON.parse(String(e.data)) as { type: string }).type === 'ping') serverPings.push(Date.now());
            });
          }
        };
      }, ALIGN_MS);
      await tab.goto(web.url);

      // The page's timers really are aligned.
      const firedAt = await tab.evaluate(() => new Promise<number>((r) => setTimeout(() => r(Date.now()), 10)));
      process.stdout.write(
        `browser alignment figures: ${JSON.stringify({ alignMs: ALIGN_MS, firedAtModAlignMs: firedAt % ALIGN_MS })}\n`,
      );

      await tab.evaluate(
        ({ url, ping }) => {
          const w = globalThis as unknown as Record<string, unknown> & { Livebus: typeof import('../src/browser') };
          const closes: Array<{ reason: string; at: number }> = [];
          const received: string[] = [];
          w.closes = closes;
          w.received = received;
          const client = new w.Livebus.BusConsumer({
            url,
            userId: 'background-user',
            minReconnectDelayMs: 20,
            maxReconnectDelayMs: 100,
            ...ping,
          });
          w.client = client;
          client.onClient('close', (e) => closes.push({ reason: e.reason, at: Date.now() }));
          client.on('session.notice', (d) => received.push(d.message));
          return client.connect();
        },
        { url: `ws://127.0.0.1:${proxy.port}/ws`, ping: PING },
      );

      // Five simulated "minutes": the gateway's pings keep the session alive although the page's own
      // timers run only at each alignment, later than the 1 500 ms timeout.
      for (let i = 1; i <= 5; i++) {
        await gw.gw.publish('background-user', numbered(i));
        await new Promise((r) => setTimeout(r, ALIGN_MS));
      }
      expect(await read((w) => w.closes)).toEqual([]);
      expect(await read((w) => w.client.state)).toBe('open');
      expect(await read((w) => w.client.counters.reconnects)).toBe(0);
      expect(await read((w) => w.received)).toEqual(['1', '2', '3', '4', '5']);
      // The gateway drove liveness with app-level pings, every 300 ms or so.
      expect((await read((w) => w.serverPings)).length).toBeGreaterThanOrEqual((5 * ALIGN_MS) / 300 / 2);

      // Now the gateway goes silent for real (the proxy stops forwarding): detected as ping_timeout within
      // the timeout, plus the first aligned watchdog run after it, plus the grace, whose own timer is
      // aligned too (so it lasts up to one more period).
      const frozenAt = Date.now();
      proxy.freeze();
      const grace = Math.min(PING.pingIntervalMs, 5_000);
      const bound = PING.pingTimeoutMs + ALIGN_MS + Math.ceil(grace / ALIGN_MS) * ALIGN_MS + 500;
      await waitFor(async () => (await read((w) => w.closes)).length > 0, 'dead gateway detected', bound + 2_000);
      const [close] = await read((w) => w.closes);
      expect(close?.reason).toBe('ping_timeout');
      // When exactly (timeout, grace after a late wakeup) is checked on fake timers in src/heartbeat.test.ts.
      process.stdout.write(
        `browser ping timeout figures: ${JSON.stringify({ pingTimeoutMs: PING.pingTimeoutMs, detectedAfterMs: (close?.at ?? 0) - frozenAt })}\n`,
      );

      // And it comes back once the network does.
      proxy.thaw();
      proxy.dropAll();
      await waitFor(async () => (await read((w) => w.client.state)) === 'open', 'reconnected', 15_000);
    } finally {
      await tab.close();
      await proxy.close();
      await gw.stop();
    }
  }, 60_000);
});
