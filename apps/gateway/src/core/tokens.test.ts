import { CloseCode } from '@livebus/protocol';
import { JwtAuthenticator, signJwt } from '../auth/jwt-authenticator';
import { startCore } from './core-harness';

const secret = 'core-test-secret';
const token = (sub: string, expS: number) => signJwt({ sub, exp: expS }, secret);
const nowS = () => Math.floor(Date.now() / 1000);

describe('in-band auth (token refresh) and token lifetime', () => {
  let core: ReturnType<typeof startCore>;
  afterEach(() => core.stop());

  const jwtCore = (now?: () => number) =>
    startCore(
      { tokenClockToleranceMs: 0, tokenExpiryGraceMs: 0 },
      {
        auth: new JwtAuthenticator({
          secret,
          serviceRoleClaim: 'service',
          clockToleranceMs: 0,
          ...(now ? { now } : {}),
        }),
      },
    );

  it('an auth frame with a fresh token of the same user extends the session (notice, hook session.token_refreshed)', async () => {
    core = jwtCore();
    const { socket, welcome } = await core.open('alice', { token: token('alice', nowS() + 600) });
    const refreshed = core.hooks.next('session.token_refreshed');
    const expS = nowS() + 3600;
    socket.receive({ type: 'auth', token: token('alice', expS) });
    expect(await socket.next('notice')).toMatchObject({ kind: 'token_refreshed', expires_at_ms: expS * 1000 });
    await expect(refreshed).resolves.toEqual({ uid: 'alice', sessionId: welcome.session_id, expiresAtMs: expS * 1000 });
    expect(socket.ended).toBeUndefined();
  });

  it('a refused fresh token gets an error and the session keeps its deadline (hook session.token_refresh_failed)', async () => {
    core = jwtCore();
    const { socket } = await core.open('alice', { token: token('alice', nowS() + 600) });
    const failed = core.hooks.next('session.token_refresh_failed');
    socket.receive({ type: 'auth', token: 'not-a-jwt' });
    expect(await socket.next('error')).toMatchObject({ code: 'not_authenticated' });
    await expect(failed).resolves.toMatchObject({ uid: 'alice', reason: 'invalid' });
    expect(socket.ended).toBeUndefined();
  });

  it("closes 4003 on another user's token", async () => {
    core = jwtCore();
    const { socket } = await core.open('alice', { token: token('alice', nowS() + 600) });
    const failed = core.hooks.next('session.token_refresh_failed');
    socket.receive({ type: 'auth', token: token('mallory', nowS() + 600) });
    expect(await socket.closed).toMatchObject({ code: CloseCode.Forbidden });
    await expect(failed).resolves.toMatchObject({ uid: 'alice', reason: 'other_user' });
  });

  it('closes 4011 a session whose token ran out with no fresh one (hook session.token_expired)', async () => {
    // The token was valid when the authenticator looked (its clock a minute back); it has expired since.
    core = jwtCore(() => Date.now() - 60_000);
    const expired = core.hooks.next('session.token_expired');
    const closes = core.hooks.next('session.close');
    const { socket } = await core.open('alice', { token: token('alice', nowS() - 1) });
    expect(await socket.closed).toMatchObject({ code: CloseCode.TokenExpired });
    await expect(expired).resolves.toMatchObject({ uid: 'alice' });
    await expect(closes).resolves.toMatchObject({ type: 'token_expired' });
  });
});
