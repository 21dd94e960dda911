import type { ConsumerEvents } from '../src/index';
import { BusConsumer } from '../src/index';
import { type GatewayHandle, startGateway } from './helpers';

describe('a gateway under admission control (503 + Retry-After)', () => {
  let g: GatewayHandle;
  let lagMs = 0;
  beforeAll(async () => {
    // The lag is injected: the gateway refuses upgrades while it is above 40 ms.
    g = await startGateway({ admissionMaxLagMs: 40, admissionRetryAfterS: 1 }, () => ({ eventLoopLagMs: () => lagMs }));
  });
  afterAll(() => g.stop());

  it('is waited for as the Retry-After says, not by the backoff, and the client then opens', async () => {
    lagMs = 1_000;
    // A backoff of 0 would retry at once: only the Retry-After can make the client wait.
    const c = new BusConsumer({ url: g.url, userId: 'busy', backoff: () => 0 });
    c.onClient('error', () => {});
    const closes: ConsumerEvents['close'][] = [];
    c.onClient('close', (e) => {
      closes.push(e);
      lagMs = 0; // the next attempt is admitted
    });
    try {
      await c.connect();
      expect(closes).toHaveLength(1);
      expect(closes[0]).toMatchObject({ code: 1006, willReconnect: true });
      // Retry-After is 1 or 2 s, plus up to 1 s of jitter.
      expect(closes[0]?.delayMs).toBeGreaterThanOrEqual(1_000);
      expect(closes[0]?.delayMs).toBeLessThan(3_000);
      expect(c.state).toBe('open');
      expect(g.gw.stats().upgradesRefused).toBe(1);
    } finally {
      c.close();
    }
  });
});
