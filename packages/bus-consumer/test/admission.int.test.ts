import { type Authenticator, NoneAuthenticator } from '@livebus/gateway';
import { waitFor } from '@livebus/test-support';
import type { ConsumerEvents } from '../src/index';
import { BusConsumer } from '../src/index';
import { type GatewayHandle, startGateway } from './helpers';

describe('a gateway under admission control (503 + Retry-After)', () => {
  let g: GatewayHandle;
  const held: Array<() => void> = [];
  // The first hello is held: with a bound of one handshake in flight, the next upgrade is refused.
  const auth: Authenticator = {
    mode: 'none',
    authenticate: async (credentials) => {
      if (credentials.userId === 'first') await new Promise<void>((resolve) => held.push(resolve));
      return new NoneAuthenticator().authenticate(credentials);
    },
  };
  beforeAll(async () => {
    g = await startGateway({ admissionMaxHandshakes: 1, admissionMaxLagMs: 0, admissionRetryAfterS: 1 }, () => ({
      auth,
    }));
  });
  afterAll(() => g.stop());

  it('is waited for as the Retry-After says, not by the backoff, and the client then opens', async () => {
    const first = new BusConsumer({ url: g.url, userId: 'first' });
    first.onClient('error', () => {});
    const firstOpen = first.connect();
    await waitFor(() => held.length === 1, 'the first hello in flight');

    // A backoff of 0 would retry at once: only the Retry-After can make the client wait.
    const c = new BusConsumer({ url: g.url, userId: 'busy', backoff: () => 0 });
    c.onClient('error', () => {});
    const closes: ConsumerEvents['close'][] = [];
    c.onClient('close', (e) => {
      closes.push(e);
      for (const release of held.splice(0)) release(); // the first session opens: room for the next
    });
    try {
      await c.connect();
      await firstOpen;
      expect(closes).toHaveLength(1);
      expect(closes[0]).toMatchObject({ code: 1006, willReconnect: true });
      // A computed delay, not a measured one: Retry-After's whole seconds (1 or 2 with
      // ADMISSION_RETRY_AFTER_S 1) plus the client's jitter of under a second (retry-after.test.ts).
      expect([1, 2]).toContain(Math.floor((closes[0]?.delayMs ?? 0) / 1_000));
      expect(c.state).toBe('open');
      expect(g.gw.stats().upgradesRefused).toBe(1);
    } finally {
      c.close();
      first.close();
    }
  });
});
