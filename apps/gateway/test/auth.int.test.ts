import { CloseCode } from '@livebus/protocol';
import { type AuthEmulatorStub, startAuthEmulatorStub, unsignedIdToken } from '@livebus/test-support';
import { deleteApp, initializeApp } from 'firebase-admin/app';
import { FirebaseAuthenticator } from '../src/auth/firebase-authenticator';
import { JwtAuthenticator, signJwt } from '../src/auth/jwt-authenticator';
import { httpJson, startGateway, TestClient, type TestGateway } from './helpers';

const SECRET = 'a-test-secret-that-is-long-enough-1234';
const ADMIN = 'admin-token-for-tests-0001';
const now = () => Math.floor(Date.now() / 1000);
const token = (sub: string, extra: Record<string, unknown> = {}, secret = SECRET) =>
  signJwt({ sub, exp: now() + 600, ...extra }, secret);

describe('AUTH_MODE=jwt', () => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startGateway(
      { authMode: 'jwt', jwtSecret: SECRET, adminToken: ADMIN },
      { auth: new JwtAuthenticator({ secret: SECRET, serviceRoleClaim: 'livebus_service' }) },
    );
  });
  afterAll(() => t.close());

  const refused = async (hello: Record<string, unknown>, headers: Record<string, string> = {}) => {
    const c = new TestClient(t.url, headers);
    await c.opened;
    c.sendRaw(JSON.stringify({ type: 'hello', v: 1, ...hello }));
    return (await c.closed).code;
  };

  it('refuses a missing, expired or wrongly signed token with 4001, without logging the token', async () => {
    expect(await refused({})).toBe(CloseCode.AuthFailed);
    const expired = signJwt({ sub: 'u1', exp: now() - 3600 }, SECRET);
    expect(await refused({ token: expired })).toBe(CloseCode.AuthFailed);
    const forged = token('u1', {}, 'another-secret-that-is-long-enough-xx');
    expect(await refused({ token: forged })).toBe(CloseCode.AuthFailed);
    const none = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from('{"sub":"u1"}').toString('base64url')}.`;
    expect(await refused({ token: none })).toBe(CloseCode.AuthFailed);
    const failures = t.logs.of('ws_auth_failed');
    expect(failures.map((f) => f.reason)).toEqual(['missing', 'expired', 'invalid', 'invalid']);
    const text = JSON.stringify(t.logs.entries);
    expect(text).not.toContain(expired);
    expect(text).not.toContain(forged);
  });

  it('says why in the 4001 close reason, with the same reason on HTTP 401', async () => {
    const closeOf = async (hello: Record<string, unknown>) => {
      const c = new TestClient(t.url);
      await c.opened;
      c.sendRaw(JSON.stringify({ type: 'hello', v: 1, ...hello }));
      return c.closed;
    };
    const expired = signJwt({ sub: 'u1', exp: now() - 3600 }, SECRET);
    const forged = token('u1', {}, 'another-secret-that-is-long-enough-xx');
    expect(await closeOf({})).toEqual({ code: CloseCode.AuthFailed, reason: 'missing_token' });
    expect(await closeOf({ token: expired })).toEqual({ code: CloseCode.AuthFailed, reason: 'token_expired' });
    expect(await closeOf({ token: forged })).toEqual({ code: CloseCode.AuthFailed, reason: 'bad_signature' });
    expect(await closeOf({ token: 'garbage' })).toEqual({ code: CloseCode.AuthFailed, reason: 'malformed_token' });

    const rpc = (bearer?: string) =>
      httpJson(`${t.http}/rpc`, {
        method: 'POST',
        ...(bearer ? { token: bearer } : {}),
        body: '{"method":"REGISTRY.get_sessions","args":["u1"]}',
      });
    expect((await rpc()).body.error).toMatchObject({ code: 'unauthenticated', reason: 'missing_token' });
    expect((await rpc(expired)).body.error).toMatchObject({ code: 'unauthenticated', reason: 'token_expired' });
    expect((await rpc(forged)).body.error).toMatchObject({ code: 'unauthenticated', reason: 'bad_signature' });
    // A 4001 is still counted as auth_failed, whatever its reason (token_expired is also a 4011's name).
    const metrics = await (await fetch(`${t.http}/metrics`, { headers: { authorization: `Bearer ${ADMIN}` } })).text();
    expect(metrics).not.toMatch(/livebus_disconnects_total\{reason="token_expired"\}/);
    expect(metrics).toMatch(/livebus_disconnects_total\{reason="auth_failed"\} \d+/);
  });

  it('accepts a valid token in the hello frame or in the Authorization header', async () => {
    const a = new TestClient(t.url);
    expect((await a.hello({ token: token('u1') })).user_id).toBe('u1');
    const b = new TestClient(t.url, { authorization: `Bearer ${token('u2')}` });
    expect((await b.hello()).user_id).toBe('u2');
    await Promise.all([a.close(), b.close()]);
  });

  it('refuses a user acting for another user, allows a service token to', async () => {
    const user = new TestClient(t.url);
    await user.hello({ token: token('u1') });
    const denied = await user.call('REGISTRY.register_user', ['u2', 's', '/']);
    expect(denied).toMatchObject({ type: 'rpc_error', error: { code: 'forbidden' } });
    const own = await user.call('REGISTRY.register_user', ['u1', 's', '/']);
    expect(own.type).toBe('rpc_result');

    const service = await httpJson(`${t.http}/rpc`, {
      method: 'POST',
      token: token('app-server', { livebus_service: true }),
      body: JSON.stringify({ method: 'REGISTRY.get_sessions', args: ['u1'] }),
    });
    expect(service.status).toBe(200);
    expect((service.body.result as { sessions: unknown[] }).sessions).toHaveLength(1);

    const other = await httpJson(`${t.http}/rpc`, {
      method: 'POST',
      token: token('u2'),
      body: JSON.stringify({ method: 'REGISTRY.get_sessions', args: ['u1'] }),
    });
    expect(other.status).toBe(403);
    expect(other.body.error).toMatchObject({ code: 'forbidden' });
    await user.close();
  });

  it('POST /rpc without a valid token is 401', async () => {
    const res = await httpJson(`${t.http}/rpc`, {
      method: 'POST',
      body: '{"method":"REGISTRY.get_sessions","args":["u1"]}',
    });
    expect(res.status).toBe(401);
    const bad = await httpJson(`${t.http}/rpc`, {
      method: 'POST',
      token: 'garbage',
      body: '{"method":"REGISTRY.get_sessions","args":["u1"]}',
    });
    expect(bad.status).toBe(401);
  });

  it('admin endpoints refuse without the admin token and answer with it', async () => {
    for (const path of ['/ws-metrics', '/debug', '/metrics']) {
      expect((await httpJson(`${t.http}${path}`)).status).toBe(401);
      expect((await httpJson(`${t.http}${path}`, { token: 'wrong-token-000000' })).status).toBe(401);
      expect((await httpJson(`${t.http}${path}`, { token: token('u1') })).status).toBe(401);
      expect((await httpJson(`${t.http}${path}`, { token: ADMIN })).status).toBe(200);
    }
    const debug = await httpJson(`${t.http}/debug`, { token: ADMIN });
    expect(JSON.stringify(debug.body)).not.toContain(SECRET);
    expect(JSON.stringify(debug.body)).not.toContain(ADMIN);
  });

  it('/debug shows REDIS_URL without its password, in the user info or the query (ioredis reads both)', async () => {
    const withRedis = await startGateway({
      adminToken: ADMIN,
      redisUrl: 'rediss://default:hunter2-user-info@cache.example.com:6380/0?password=hunter2-query&db=1',
    });
    try {
      const debug = await httpJson(`${withRedis.http}/debug`, { token: ADMIN });
      expect(debug.status).toBe(200);
      const shown = (debug.body.config as { redisUrl: string }).redisUrl;
      expect(shown).toContain('cache.example.com:6380');
      expect(JSON.stringify(debug.body)).not.toMatch(/hunter2/);
    } finally {
      await withRedis.close();
    }
  });

  it('POST /publish needs the admin token or a service token', async () => {
    const body = JSON.stringify({
      user_id: 'u1',
      event: { event: 'session.notice', data: { level: 'info', message: 'hi' } },
    });
    expect((await httpJson(`${t.http}/publish`, { method: 'POST', body })).status).toBe(401);
    expect((await httpJson(`${t.http}/publish`, { method: 'POST', body, token: token('u1') })).status).toBe(403);
    expect((await httpJson(`${t.http}/publish`, { method: 'POST', body, token: ADMIN })).status).toBe(202);
    const svc = token('app', { livebus_service: true });
    expect((await httpJson(`${t.http}/publish`, { method: 'POST', body, token: svc })).status).toBe(202);
  });

  it('takes a service claim of true or "true" only: "false", "0", "no" or 1 are a user (POST /publish 403)', async () => {
    const body = JSON.stringify({
      user_id: 'u1',
      event: { event: 'session.notice', data: { level: 'info', message: 'hi' } },
    });
    const publish = async (claim: unknown) =>
      (await httpJson(`${t.http}/publish`, { method: 'POST', body, token: token('app', { livebus_service: claim }) }))
        .status;
    for (const claim of ['false', '0', 'no', 1]) expect([claim, await publish(claim)]).toEqual([claim, 403]);
    expect(await publish('true')).toBe(202);
  });
});

describe('AUTH_MODE=jwt: tokens without exp, refused with jwtRequireExp (JWT_REQUIRE_EXP, on in production)', () => {
  let t: TestGateway;
  // No ports.auth: the gateway makes its authenticator from the configuration, as the CLI does.
  beforeAll(async () => {
    t = await startGateway({ authMode: 'jwt', jwtSecret: SECRET, adminToken: ADMIN, jwtRequireExp: true });
  });
  afterAll(() => t.close());

  const noExp = (sub: string, extra: Record<string, unknown> = {}) =>
    signJwt({ sub, ...extra }, SECRET, { expiresInS: false });
  const publishBody = JSON.stringify({
    user_id: 'u1',
    event: { event: 'session.notice', data: { level: 'info', message: 'hi' } },
  });

  it('refuses one in the hello with 4001 invalid_token, and takes signJwt default (an hour ahead)', async () => {
    const c = new TestClient(t.url);
    await c.opened;
    c.send({ type: 'hello', v: 1, token: noExp('u1') });
    expect(await c.closed).toEqual({ code: CloseCode.AuthFailed, reason: 'invalid_token' });
    const ok = new TestClient(t.url);
    const welcome = await ok.hello({ token: signJwt({ sub: 'u1' }, SECRET) });
    expect(welcome.user_id).toBe('u1');
    await ok.close();
  });

  it('refuses one in an auth frame: not_authenticated, and the session lives on with its token', async () => {
    const c = new TestClient(t.url);
    await c.hello({ token: token('u1') });
    c.send({ type: 'auth', token: noExp('u1') });
    expect(await c.next('error')).toMatchObject({ code: 'not_authenticated' });
    expect(c.frames.some((f) => f.type === 'notice' && f.kind === 'token_refreshed')).toBe(false);
    expect((await c.call('REGISTRY.get_sessions', ['u1'])).type).toBe('rpc_result');
    expect(await c.close()).toMatchObject({ code: 1000 });
  });

  it('refuses one on POST /rpc and POST /publish with 401 invalid_token, a service token too', async () => {
    const rpc = await httpJson(`${t.http}/rpc`, {
      method: 'POST',
      token: noExp('app', { livebus_service: true }),
      body: '{"method":"REGISTRY.get_sessions","args":["u1"]}',
    });
    expect([rpc.status, rpc.body.error]).toEqual([401, expect.objectContaining({ reason: 'invalid_token' })]);
    const svc = noExp('app', { livebus_service: true });
    const publish = await httpJson(`${t.http}/publish`, { method: 'POST', body: publishBody, token: svc });
    expect([publish.status, publish.body.error]).toEqual([401, expect.objectContaining({ reason: 'invalid_token' })]);
    const minted = signJwt({ sub: 'app', livebus_service: true }, SECRET);
    expect((await httpJson(`${t.http}/publish`, { method: 'POST', body: publishBody, token: minted })).status).toBe(
      202,
    );
  });

  it('accepts one in production with jwtRequireExp false, and warns of it at start', async () => {
    const lax = await startGateway({
      production: true,
      authMode: 'jwt',
      jwtSecret: SECRET,
      adminToken: ADMIN,
      allowedOrigins: ['https://app.example.com'],
      jwtRequireExp: false,
    });
    try {
      expect(lax.logs.of('gateway_config_warning').map((l) => l.variable)).toEqual(['JWT_REQUIRE_EXP']);
      const c = new TestClient(lax.url);
      expect((await c.hello({ token: noExp('u1') })).user_id).toBe('u1');
      await c.close();
    } finally {
      await lax.close();
    }
  });

  it('accepts one outside production by default (jwtRequireExp off), as before', async () => {
    const dev = await startGateway({ authMode: 'jwt', jwtSecret: SECRET });
    try {
      const c = new TestClient(dev.url);
      expect((await c.hello({ token: noExp('u1') })).user_id).toBe('u1');
      await c.close();
    } finally {
      await dev.close();
    }
  });
});

describe('AUTH_MODE=jwt: an exp with a fraction (a NumericDate may have one)', () => {
  let t: TestGateway;
  // A tolerance of a minute: a token 1.2345 s past exp is accepted and asked for at once.
  beforeAll(async () => {
    t = await startGateway({ authMode: 'jwt', jwtSecret: SECRET, tokenClockToleranceMs: 60_000 });
  });
  afterAll(() => t.close());

  it('tells token_expiring and token_refreshed in whole milliseconds, and the session lives on (was closed 1011)', async () => {
    const expired = now() - 1.2345;
    const c = new TestClient(t.url);
    await c.hello({ token: signJwt({ sub: 'frac', exp: expired }, SECRET) });
    const expiring = await c.next('notice', (n) => n.kind === 'token_expiring');
    expect(expiring.expires_at_ms).toBe(Math.floor(expired * 1000));

    const fresh = now() + 600.6789;
    c.send({ type: 'auth', token: signJwt({ sub: 'frac', exp: fresh }, SECRET) });
    const refreshed = await c.next('notice', (n) => n.kind === 'token_refreshed');
    expect(refreshed.expires_at_ms).toBe(Math.floor(fresh * 1000));
    expect((await c.call('REGISTRY.get_sessions', ['frac'])).type).toBe('rpc_result');
    expect(await c.close()).toMatchObject({ code: 1000 });
  });
});

describe('AUTH_MODE=firebase (firebase-admin against an Auth emulator stub)', () => {
  let stub: AuthEmulatorStub;
  let t: TestGateway;
  let app: ReturnType<typeof initializeApp>;
  const project = 'livebus-auth-test';

  beforeAll(async () => {
    stub = await startAuthEmulatorStub();
    process.env.FIREBASE_AUTH_EMULATOR_HOST = stub.host;
    stub.users.set('fb-user', { localId: 'fb-user' });
    app = initializeApp({ projectId: project }, 'auth-test');
    t = await startGateway({ authMode: 'firebase' }, { auth: new FirebaseAuthenticator(app, 'livebus_service') });
  });
  afterAll(async () => {
    await t.close();
    await deleteApp(app);
    await stub.close();
    delete process.env.FIREBASE_AUTH_EMULATOR_HOST;
  });

  it('accepts a valid ID token and looks the user up', async () => {
    const c = new TestClient(t.url);
    const welcome = await c.hello({ token: unsignedIdToken(project, 'fb-user') });
    expect(welcome.user_id).toBe('fb-user');
    expect(stub.lookups).toBeGreaterThan(0);
    await c.close();
  });

  it('refuses an expired token, a token for another project and an unknown user with 4001', async () => {
    for (const bad of [
      unsignedIdToken(project, 'fb-user', {}, -3600),
      unsignedIdToken('another-project', 'fb-user'),
      unsignedIdToken(project, 'nobody'),
    ]) {
      const c = new TestClient(t.url);
      await c.opened;
      c.send({ type: 'hello', v: 1, token: bad });
      expect((await c.closed).code).toBe(CloseCode.AuthFailed);
    }
  });

  it('says why in the 4001 close reason: expired, another project', async () => {
    const reasons: string[] = [];
    for (const bad of [unsignedIdToken(project, 'fb-user', {}, -3600), unsignedIdToken('another-project', 'fb-user')]) {
      const c = new TestClient(t.url);
      await c.opened;
      c.send({ type: 'hello', v: 1, token: bad });
      reasons.push((await c.closed).reason);
    }
    expect(reasons).toEqual(['token_expired', 'wrong_audience']);
  });

  it('refreshes a live session in band with a fresh ID token, and closes 4011 without one', async () => {
    stub.users.set('fb-other', { localId: 'fb-other' });
    const short = await startGateway(
      { authMode: 'firebase', tokenRefreshLeadMs: 1_500, tokenExpiryGraceMs: 300 },
      { auth: new FirebaseAuthenticator(app, 'livebus_service') },
    );
    try {
      const c = new TestClient(short.url);
      await c.hello({ token: unsignedIdToken(project, 'fb-user', {}, 2) });
      await c.next('notice', (n) => n.kind === 'token_expiring', 3_000);
      const fresh = unsignedIdToken(project, 'fb-user', {}, 3600);
      c.send({ type: 'auth', token: fresh });
      const refreshed = await c.next('notice', (n) => n.kind === 'token_refreshed');
      const { exp } = JSON.parse(Buffer.from(fresh.split('.')[1] as string, 'base64url').toString()) as { exp: number };
      expect(refreshed.expires_at_ms).toBe(exp * 1_000); // the fresh token's expiry
      c.send({ type: 'auth', token: unsignedIdToken(project, 'fb-other') });
      expect((await c.closed).code).toBe(CloseCode.Forbidden);

      const lazy = new TestClient(short.url);
      await lazy.hello({ token: unsignedIdToken(project, 'fb-user', {}, 2) });
      expect((await lazy.closed).code).toBe(CloseCode.TokenExpired);
    } finally {
      await short.close();
    }
  });

  it('refuses a uid of 129 characters with 4001 even though the user exists, accepts 128', async () => {
    // The stub knows both users, so only the length can be the reason for a refusal. firebase-admin
    // enforces the same 128 limit on `sub` before toPrincipal sees it; the gateway's own check is
    // the second line, covered by the toPrincipal unit tests.
    const [ok, tooLong] = ['f'.repeat(128), 'f'.repeat(129)];
    stub.users.set(ok, { localId: ok });
    stub.users.set(tooLong, { localId: tooLong });
    const a = new TestClient(t.url);
    expect((await a.hello({ token: unsignedIdToken(project, ok) })).user_id).toBe(ok);
    await a.close();
    const b = new TestClient(t.url);
    await b.opened;
    b.send({ type: 'hello', v: 1, token: unsignedIdToken(project, tooLong) });
    expect((await b.closed).code).toBe(CloseCode.AuthFailed);
    expect(t.logs.of('ws_auth_failed').at(-1)?.reason).toBe('invalid');
  });

  it('takes the service custom claim true or "true" only, as in AUTH_MODE=jwt', async () => {
    const auth = new FirebaseAuthenticator(app, 'livebus_service');
    const service = async (claim: unknown) =>
      (await auth.authenticate({ token: unsignedIdToken(project, 'fb-user', { livebus_service: claim }) })).service;
    expect(await service(true)).toBe(true);
    expect(await service('true')).toBe(true);
    for (const claim of ['false', '0', 'no', 1]) expect([claim, await service(claim)]).toEqual([claim, false]);
  });

  it('fills expiresAtMs from the ID token exp', async () => {
    const token = unsignedIdToken(project, 'fb-user', { livebus_service: true }, 600);
    const { exp } = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as { exp: number };
    expect(await new FirebaseAuthenticator(app, 'livebus_service').authenticate({ token })).toEqual({
      uid: 'fb-user',
      service: true,
      expiresAtMs: exp * 1000,
    });
  });
});
