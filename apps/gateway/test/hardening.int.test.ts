import { connect } from 'node:net';
import { CloseCode, RPC_METHODS } from '@livebus/protocol';
import { waitFor } from '@livebus/test-support';
import { JwtAuthenticator, signJwt } from '../src/auth/jwt-authenticator';
import { createLogger } from '../src/logger';
import { connectAs, httpJson, LogCapture, startGateway, TestClient, type TestGateway } from './helpers';

const nested = (depth: number) => `${'['.repeat(depth)}${']'.repeat(depth)}`;

describe('no input can take the gateway down', () => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startGateway({ handshakeTimeoutMs: 500 });
  });
  afterAll(() => t.close());

  /** The process still serves: a new client completes a round trip. */
  const stillServing = async () => {
    const { client } = await connectAs(t.url, 'u-after');
    expect((await client.call('REGISTRY.get_sessions', ['u-after'])).type).toBe('rpc_result');
    await client.close();
  };

  it('refuses 5 000 levels of nesting before hello with bad_frame and 4004', async () => {
    for (const frame of [
      `{"type":"rpc","id":1,"method":"REGISTRY.get_sessions","args":${nested(5_000)}}`,
      `{"type":"hello","v":1,"user_id":"x","route":${nested(5_000)}}`,
      nested(100_000),
    ]) {
      const c = new TestClient(t.url);
      await c.opened;
      c.sendRaw(frame);
      expect(await c.next('error')).toMatchObject({ code: 'bad_frame', message: expect.stringContaining('deeper') });
      expect((await c.closed).code).toBe(CloseCode.BadFrame);
    }
    await stillServing();
  });

  it('refuses deep arguments to every RPC method after hello, and the session stays open', async () => {
    const { client } = await connectAs(t.url, 'u-deep');
    for (const method of RPC_METHODS) {
      client.sendRaw(`{"type":"rpc","id":"${method}","method":"${method}","args":["u-deep",${nested(3_000)}]}`);
    }
    await waitFor(
      () => client.frames.filter((f) => f.type === 'error' && f.code === 'bad_frame').length === RPC_METHODS.length,
      'a bad_frame error per method',
    );
    expect((await client.call('REGISTRY.get_sessions', ['u-deep'])).type).toBe('rpc_result');
    await client.close();
  });

  it('answers 400 to deep bodies on POST /rpc and POST /publish', async () => {
    const token = 'u-http';
    const rpc = await httpJson(`${t.http}/rpc`, {
      method: 'POST',
      token,
      body: `{"method":"REGISTRY.get_sessions","args":${nested(5_000)}}`,
    });
    expect(rpc).toMatchObject({ status: 400, body: { error: { code: 'too_deep' } } });
    const publish = await httpJson(`${t.http}/publish`, {
      method: 'POST',
      body: `{"user_id":"u","event":{"event":"listener.change","data":{"source":"s","path":"p","change":"added","data":${nested(5_000)}}}}`,
    });
    expect(publish).toMatchObject({ status: 400, body: { error: { code: 'too_deep' } } });
    await stillServing();
  });
});

describe('the last-resort guards', () => {
  it('a handler that throws closes only its socket (1011) or fails only its request (500)', async () => {
    const logs = new LogCapture();
    const base = createLogger({ level: 'debug', format: 'json', instanceId: 'gw-guard', transport: logs });
    // A logger that fails on one event stands in for any bug on the handshake path.
    const logger = {
      ...base,
      info: (event: Parameters<typeof base.info>[0], fields?: Record<string, unknown>) => {
        if (event === 'ws_connect' && fields?.uid === 'boom') throw new Error('injected');
        base.info(event, fields);
      },
    };
    let redisFails = false;
    const t = await startGateway(
      {},
      {
        logger,
        redisStatus: () => {
          if (redisFails) throw new Error('injected');
          return 'disabled';
        },
      },
    );
    try {
      const bystander = await connectAs(t.url, 'bystander');
      const c = new TestClient(t.url);
      await c.opened;
      c.send({ type: 'hello', v: 1, user_id: 'boom' });
      expect((await c.closed).code).toBe(CloseCode.InternalError);
      expect(logs.of('ws_handler_error')[0]).toMatchObject({
        where: 'hello',
        error: expect.stringContaining('injected'),
      });
      redisFails = true;
      expect((await httpJson(`${t.http}/health/readiness`)).status).toBe(500);
      expect(logs.of('http_handler_error')).toHaveLength(1);
      redisFails = false;
      // Neither took the process or the other session down.
      expect((await bystander.client.call('REGISTRY.get_sessions', ['bystander'])).type).toBe('rpc_result');
      expect((await httpJson(`${t.http}/health/readiness`)).status).toBe(200);
      await bystander.client.close();
    } finally {
      await t.close();
    }
  });
});

describe('the edge', () => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startGateway({
      handshakeTimeoutMs: 400,
      allowedOrigins: ['https://app.example.com', 'https://*.example.org'],
    });
  });
  afterAll(() => t.close());

  it('refuses an upgrade from another Origin with 403 before the socket opens', async () => {
    const evil = new TestClient(t.url, { origin: 'https://evil.test' });
    await expect(evil.opened).rejects.toThrow('403');
    expect(t.logs.of('ws_origin_refused')[0]).toMatchObject({ origin: 'https://evil.test' });
    for (const origin of ['https://app.example.com', 'https://tenant.example.org']) {
      const ok = new TestClient(t.url, { origin });
      expect((await ok.hello({ user_id: 'o' })).user_id).toBe('o');
      await ok.close();
    }
    // A server-side client sends no Origin.
    const server = new TestClient(t.url);
    expect((await server.hello({ user_id: 'o' })).user_id).toBe('o');
    await server.close();
  });

  it('drops a connection that never finishes its upgrade within the handshake timeout', async () => {
    const socket = connect(t.port, '127.0.0.1');
    await new Promise((resolve) => socket.once('connect', resolve));
    const started = Date.now();
    socket.write('GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n'); // and never the rest
    await new Promise((resolve) => socket.once('close', resolve));
    // Exactly when is checked on fake timers in src/transport/http/header-deadline.test.ts.
    process.stdout.write(
      `handshake timeout figures: ${JSON.stringify({ timeoutMs: 400, closedAfterMs: Date.now() - started })}\n`,
    );
    expect(socket.destroyed).toBe(true);
  });

  it('shows retained bytes on /debug and /metrics, and accepts a batch on POST /publish', async () => {
    const note = (m: string) => ({ event: 'session.notice', data: { level: 'info', message: m } });
    const batch = await httpJson(`${t.http}/publish`, {
      method: 'POST',
      body: JSON.stringify({
        events: [
          { user_id: 'b1', event: note('one') },
          { user_id: 'b2', event: note('two') },
          { user_id: 'b1', event: note('three') },
        ],
      }),
    });
    expect(batch.status).toBe(202);
    expect(batch.body.cursors).toHaveLength(3);
    const bad = await httpJson(`${t.http}/publish`, {
      method: 'POST',
      body: JSON.stringify({ events: [{ user_id: 'b1', event: { event: 'nope', data: {} } }] }),
    });
    expect(bad.status).toBe(400);
    const debug = await httpJson(`${t.http}/debug`);
    const bytes = (debug.body.bus as { retainedBytes: number }).retainedBytes;
    expect(bytes).toBeGreaterThan(100);
    const metrics = await httpJson(`${t.http}/metrics`);
    expect(String(metrics.body)).toMatch(/livebus_retained_bytes \d+/);
  });
});

describe('token lifetime on live sessions', () => {
  const SECRET = 'a-test-secret-that-is-long-enough-1234';
  // exp is in whole seconds and the gateway allows no clock tolerance: an exp counted from the
  // start of the next second leaves lifeS to lifeS + 1 s, where one counted from the current
  // second could leave a few ms (and the hello then refused 4001).
  const token = (sub: string, lifeS: number) => signJwt({ sub, exp: Math.ceil(Date.now() / 1000) + lifeS }, SECRET);
  const expiryMsOf = (jwt: string) =>
    (JSON.parse(Buffer.from(jwt.split('.')[1] as string, 'base64url').toString()) as { exp: number }).exp * 1_000;
  let t: TestGateway;
  beforeAll(async () => {
    t = await startGateway(
      {
        authMode: 'jwt',
        jwtSecret: SECRET,
        // Above half the tokens' lives: a token is asked for at half its life (2 s or more ahead).
        tokenRefreshLeadMs: 3_000,
        tokenExpiryGraceMs: 300,
        tokenClockToleranceMs: 0,
      },
      { auth: new JwtAuthenticator({ secret: SECRET, serviceRoleClaim: 'livebus_service', clockToleranceMs: 0 }) },
    );
  });
  afterAll(() => t.close());

  it('asks for a fresh token before expiry and extends the session on an auth frame, events and RPCs flowing', async () => {
    const c = new TestClient(t.url);
    // 4 to 5 s left: asked for 2 s or more before exp, which leaves the publish and the auth
    // frame below that plus the grace before the close.
    const first = token('tl-1', 4);
    await c.hello({ token: first });
    const expiring = await c.next('notice', (n) => n.kind === 'token_expiring', 10_000);
    expect(expiring.expires_at_ms).toBe(expiryMsOf(first));
    await t.gw.publish('tl-1', { event: 'session.notice', data: { level: 'info', message: 'before' } });
    // Outlives everything below by far: only the first token's deadlines are in play.
    const fresh = token('tl-1', 60);
    c.send({ type: 'auth', token: fresh });
    const refreshed = await c.next('notice', (n) => n.kind === 'token_refreshed');
    expect(refreshed.expires_at_ms).toBe(expiryMsOf(fresh));
    // Past the first token's expiry plus grace: still open, still served.
    await new Promise((r) => setTimeout(r, (expiring.expires_at_ms ?? 0) + 600 - Date.now()));
    expect(c.ws.readyState).toBe(c.ws.OPEN);
    await t.gw.publish('tl-1', { event: 'session.notice', data: { level: 'info', message: 'after' } });
    await waitFor(() => c.events().length === 2, 'both events');
    expect((await c.call('REGISTRY.get_sessions', ['tl-1'])).type).toBe('rpc_result');
    expect(t.logs.of('ws_token_refreshed', 'tl-1')).toHaveLength(1);
    await c.close();
  });

  it('closes a session that sends no fresh token with 4011 at expiry plus grace', async () => {
    const c = new TestClient(t.url);
    // 2 to 3 s left for the hello; then asked at half its life, and closed past exp plus grace.
    await c.hello({ token: token('tl-2', 2) });
    const expiring = await c.next('notice', (n) => n.kind === 'token_expiring', 10_000);
    const closed = await c.closed;
    expect(closed.code).toBe(CloseCode.TokenExpired);
    // When, relative to expiry plus grace, is a figure: the exact close time (expiry +
    // tolerance + grace) is checked on fake timers in src/core/token-lifetime.test.ts.
    const lateByMs = Date.now() - ((expiring.expires_at_ms ?? 0) + 300);
    process.stdout.write(`token expiry close figures: ${JSON.stringify({ lateByMs })}\n`);
  });

  it('refuses a fresh token for another user with 4003, and an invalid one with an error frame', async () => {
    const c = new TestClient(t.url);
    await c.hello({ token: token('tl-3', 60) });
    c.send({ type: 'auth', token: 'not-a-jwt' });
    expect(await c.next('error')).toMatchObject({ code: 'not_authenticated' });
    expect(c.ws.readyState).toBe(c.ws.OPEN);
    c.send({ type: 'auth', token: token('someone-else', 60) });
    expect((await c.closed).code).toBe(CloseCode.Forbidden);
  });
});
