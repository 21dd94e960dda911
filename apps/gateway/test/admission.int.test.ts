import { request } from 'node:http';
import { waitFor } from '@livebus/test-support';
import type { Authenticator, Principal } from '../src/auth/authenticator';
import { NoneAuthenticator } from '../src/auth/none-authenticator';
import { LAG_FLOOR } from '../src/transport/admission';
import { httpJson, startGateway, TestClient, type TestGateway } from './helpers';

/** Sends a WebSocket upgrade and returns the HTTP status and Retry-After of the answer (101: accepted). */
function upgrade(port: number): Promise<{ status: number; retryAfter: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = request({
      port,
      host: '127.0.0.1',
      path: '/ws',
      headers: {
        Connection: 'Upgrade',
        Upgrade: 'websocket',
        'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==',
        'Sec-WebSocket-Version': '13',
      },
    });
    req.on('upgrade', (res, socket) => {
      socket.destroy();
      resolve({ status: res.statusCode ?? 0, retryAfter: undefined });
    });
    req.on('response', (res) => {
      res.resume();
      resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'] });
    });
    req.on('error', reject);
    req.end();
  });
}

/** Holds every token check until the test lets it go: a hello stays in flight. */
function heldAuth() {
  const held: Array<() => void> = [];
  const auth: Authenticator = {
    mode: 'none',
    authenticate: async (credentials) => {
      await new Promise<void>((resolve) => held.push(resolve));
      return new NoneAuthenticator().authenticate(credentials) as Promise<Principal>;
    },
  };
  return { auth, held };
}

/** Opens `n` sockets and sends their hellos (held by the authenticator). */
async function pendingHellos(url: string, n: number, prefix: string): Promise<TestClient[]> {
  const clients = Array.from({ length: n }, () => new TestClient(url));
  await Promise.all(clients.map((c) => c.opened));
  for (const [i, c] of clients.entries()) c.send({ type: 'hello', v: 1, user_id: `${prefix}-${i}` });
  return clients;
}

describe('admission control', () => {
  describe('while the event loop runs late during a burst', () => {
    let t: TestGateway;
    let lagMs = 0;
    const { auth, held } = heldAuth();
    beforeAll(async () => {
      t = await startGateway(
        { admissionMaxLagMs: 40, admissionMaxHandshakes: 0, admissionRetryAfterS: 1 },
        { auth, eventLoopLagMs: () => lagMs },
      );
    });
    afterAll(() => t.close());

    it('answers upgrades 503 with Retry-After, while /healthz and readiness stay 200', async () => {
      lagMs = 500;
      // Lag alone refuses nothing: a slow loop with few clients arriving admits them.
      expect((await upgrade(t.port)).status).toBe(101);
      const burst = await pendingHellos(t.url, LAG_FLOOR, 'burst');
      await waitFor(() => held.length === LAG_FLOOR, 'the burst of hellos in flight');

      const refused = await upgrade(t.port);
      expect(refused.status).toBe(503);
      expect(['1', '2']).toContain(refused.retryAfter);
      expect((await httpJson(`${t.http}/healthz`)).status).toBe(200);
      expect((await httpJson(`${t.http}/health/readiness`)).status).toBe(200);
      expect(t.gw.stats().upgradesRefused).toBe(1);
      expect(t.logs.of('ws_admission_refused')[0]).toMatchObject({ reason: 'lag', refused: 1, lag_ms: 500 });

      lagMs = 0;
      expect((await upgrade(t.port)).status).toBe(101);
      for (const release of held.splice(0)) release();
      await Promise.all(burst.map((c) => c.next('welcome')));
      for (const c of burst) c.ws.close();
      await Promise.all(burst.map((c) => c.closed));
    });
  });

  describe('while the bound of handshakes in flight is reached', () => {
    let t: TestGateway;
    const { auth, held } = heldAuth();
    beforeAll(async () => {
      t = await startGateway({ admissionMaxHandshakes: 1, admissionMaxLagMs: 0 }, { auth });
    });
    afterAll(() => t.close());

    it('refuses new upgrades until the pending hello is welcomed; open sessions are not touched', async () => {
      const [first] = await pendingHellos(t.url, 1, 'a');
      await waitFor(() => held.length === 1, 'the hello in flight');

      expect((await upgrade(t.port)).status).toBe(503);
      expect((await httpJson(`${t.http}/healthz`)).status).toBe(200);

      held.shift()?.();
      await first?.next('welcome');
      expect((await upgrade(t.port)).status).toBe(101);
      first?.ws.close();
      await first?.closed;
    });

    it('stops counting a connection closed while its hello is verified', async () => {
      const client = new TestClient(t.url);
      await client.opened;
      client.send({ type: 'hello', v: 1, user_id: 'gone' });
      await waitFor(() => held.length === 1, 'the hello in flight');
      expect((await upgrade(t.port)).status).toBe(503);
      client.ws.close();
      await client.closed;
      // The core's close bookkeeping ended the ticket (the transport let go of the socket at open).
      await waitFor(async () => (await upgrade(t.port)).status === 101, 'upgrades admitted again');
      held.shift()?.();
    });

    it('counts a hello that failed as done too', async () => {
      const client = new TestClient(t.url);
      await client.opened;
      client.send({ type: 'hello', v: 1 }); // no user: refused once the check runs
      await waitFor(() => held.length === 1, 'the hello in flight');
      held.shift()?.();
      expect((await client.closed).code).toBe(4001);
      expect((await upgrade(t.port)).status).toBe(101);
    });
  });
});
