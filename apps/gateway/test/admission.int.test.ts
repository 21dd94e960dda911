import { request } from 'node:http';
import { waitFor } from '@livebus/test-support';
import type { Authenticator, Principal } from '../src/auth/authenticator';
import { NoneAuthenticator } from '../src/auth/none-authenticator';
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

describe('admission control', () => {
  describe('while the event loop runs late', () => {
    let t: TestGateway;
    let lagMs = 0;
    beforeAll(async () => {
      t = await startGateway({ admissionMaxLagMs: 40, admissionRetryAfterS: 1 }, { eventLoopLagMs: () => lagMs });
    });
    afterAll(() => t.close());

    it('answers upgrades 503 with Retry-After, while /healthz and readiness stay 200', async () => {
      lagMs = 500;
      const refused = await upgrade(t.port);
      expect(refused.status).toBe(503);
      expect(['1', '2']).toContain(refused.retryAfter);
      expect((await httpJson(`${t.http}/healthz`)).status).toBe(200);
      expect((await httpJson(`${t.http}/health/readiness`)).status).toBe(200);
      expect(t.gw.stats().upgradesRefused).toBe(1);
      expect(t.logs.of('ws_admission_refused')[0]).toMatchObject({ reason: 'lag', refused: 1, lag_ms: 500 });

      lagMs = 0;
      const client = new TestClient(t.url);
      const welcome = await client.hello({ user_id: 'late-loop' });
      expect(welcome.user_id).toBe('late-loop');
      client.ws.close();
      await client.closed;
    });
  });

  describe('while the bound of hellos being verified is reached', () => {
    let t: TestGateway;
    const held: Array<() => void> = [];
    // Holds every token check until the test lets it go: a hello stays "being verified".
    const slowAuth: Authenticator = {
      mode: 'none',
      authenticate: async (credentials) => {
        await new Promise<void>((resolve) => held.push(resolve));
        return new NoneAuthenticator().authenticate(credentials) as Promise<Principal>;
      },
    };
    beforeAll(async () => {
      t = await startGateway({ admissionMaxHandshakes: 1, admissionMaxLagMs: 0 }, { auth: slowAuth });
    });
    afterAll(() => t.close());

    it('refuses new upgrades until the pending hello is welcomed; open sessions are not touched', async () => {
      const first = new TestClient(t.url);
      await first.opened;
      first.send({ type: 'hello', v: 1, user_id: 'a' });
      await waitFor(() => held.length === 1, 'the hello being verified');

      expect((await upgrade(t.port)).status).toBe(503);
      expect((await httpJson(`${t.http}/healthz`)).status).toBe(200);

      held.shift()?.();
      await first.next('welcome');
      expect((await upgrade(t.port)).status).toBe(101);
      first.ws.close();
      await first.closed;
    });

    it('counts a hello that failed as done too', async () => {
      const client = new TestClient(t.url);
      await client.opened;
      client.send({ type: 'hello', v: 1 }); // no user: refused once the check runs
      await waitFor(() => held.length === 1, 'the hello being verified');
      held.shift()?.();
      expect((await client.closed).code).toBe(4001);
      expect((await upgrade(t.port)).status).toBe(101);
    });
  });
});
