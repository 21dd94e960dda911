// One clock tolerance (TOKEN_CLOCK_TOLERANCE_MS) for every way a token comes in: the WebSocket
// hello, an in-band `auth` frame and POST /rpc accept and refuse the same tokens.
import { CloseCode, type ServerFrame } from '@livebus/protocol';
import { type AuthEmulatorStub, startAuthEmulatorStub, unsignedIdToken, waitFor } from '@livebus/test-support';
import { deleteApp, initializeApp } from 'firebase-admin/app';
import { FirebaseAuthenticator } from '../src/auth/firebase-authenticator';
import { signJwt } from '../src/auth/jwt-authenticator';
import { httpJson, startGateway, TestClient, type TestGateway } from './helpers';

const SECRET = 'a-test-secret-that-is-long-enough-1234';
const nowS = () => Math.floor(Date.now() / 1000);
/** A token for `sub` whose `exp` is `expS` seconds from now (negative: that long ago). */
const jwtFor = (sub: string, expS: number) => signJwt({ sub, exp: nowS() + expS }, SECRET);

/**
 * The first frame `pick` names (its name), or the close code if the socket closes first.
 * One wait on both, so nothing is left polling after the answer.
 */
function answer(c: TestClient, pick: (f: ServerFrame) => string | undefined): Promise<string | number> {
  let code: number | undefined;
  void c.closed.then((closed) => {
    code = closed.code;
  });
  return waitFor(() => c.frames.map(pick).find(Boolean) ?? code, 'an answer or a close');
}

/** Calls REGISTRY.get_sessions on an open client: `rpc_result`, or the close code. */
function served(c: TestClient, uid: string, id: number): Promise<string | number> {
  c.send({ type: 'rpc', id, method: 'REGISTRY.get_sessions', args: [uid] });
  return answer(c, (f) => (f.type === 'rpc_result' && f.id === id ? f.type : undefined));
}

/** What each way in does with `token`: the hello's outcome, the auth frame's answer, POST /rpc's status. */
async function waysIn(t: TestGateway, uid: string, token: string, freshToken: string) {
  const c = new TestClient(t.url);
  await c.opened;
  c.send({ type: 'hello', v: 1, token });
  // A session that opens must also serve: an RPC answered proves it was not closed behind the welcome.
  let hello = await answer(c, (f) => (f.type === 'welcome' ? f.type : undefined));
  if (hello === 'welcome') hello = await served(c, uid, 1);
  await c.close();

  const live = new TestClient(t.url);
  await live.hello({ token: freshToken });
  live.send({ type: 'auth', token });
  const auth = await answer(live, (f) =>
    f.type === 'error' ? f.code : f.type === 'notice' && f.kind === 'token_refreshed' ? f.kind : undefined,
  );
  const afterAuth = await served(live, uid, 1);
  await live.close();

  const rpc = await httpJson(`${t.http}/rpc`, {
    method: 'POST',
    token,
    body: JSON.stringify({ method: 'REGISTRY.get_sessions', args: [uid] }),
  });
  return { hello, auth, afterAuth, rpc: rpc.status };
}

describe('one clock tolerance for every way in, AUTH_MODE=jwt (default TOKEN_CLOCK_TOLERANCE_MS)', () => {
  let t: TestGateway;
  beforeAll(async () => {
    // A grace shorter than the tolerance: a session must still open with a token its check accepted.
    t = await startGateway({ authMode: 'jwt', jwtSecret: SECRET, tokenExpiryGraceMs: 300 });
  });
  afterAll(() => t.close());

  it('accepts a token that expired 2 s ago everywhere: welcome and a served session, token_refreshed, 200', async () => {
    const outcome = await waysIn(t, 'skew-a', jwtFor('skew-a', -2), jwtFor('skew-a', 600));
    expect(outcome).toEqual({ hello: 'rpc_result', auth: 'token_refreshed', afterAuth: 'rpc_result', rpc: 200 });
  });

  it('refuses a token that expired 25 s ago everywhere: close 4001, not_authenticated, 401', async () => {
    const outcome = await waysIn(t, 'skew-b', jwtFor('skew-b', -25), jwtFor('skew-b', 600));
    expect(outcome).toEqual({
      hello: CloseCode.AuthFailed,
      auth: 'not_authenticated',
      afterAuth: 'rpc_result',
      rpc: 401,
    });
  });

  it('TOKEN_CLOCK_TOLERANCE_MS=0 refuses a token that expired 2 s ago everywhere', async () => {
    const strict = await startGateway({ authMode: 'jwt', jwtSecret: SECRET, tokenClockToleranceMs: 0 });
    try {
      const outcome = await waysIn(strict, 'skew-c', jwtFor('skew-c', -2), jwtFor('skew-c', 600));
      expect(outcome).toEqual({
        hello: CloseCode.AuthFailed,
        auth: 'not_authenticated',
        afterAuth: 'rpc_result',
        rpc: 401,
      });
    } finally {
      await strict.close();
    }
  });
});

describe('one clock tolerance for every way in, AUTH_MODE=firebase (firebase-admin checks exp itself)', () => {
  const project = 'livebus-skew-test';
  let stub: AuthEmulatorStub;
  let app: ReturnType<typeof initializeApp>;
  let t: TestGateway;
  beforeAll(async () => {
    stub = await startAuthEmulatorStub();
    process.env.FIREBASE_AUTH_EMULATOR_HOST = stub.host;
    stub.users.set('fb-skew', { localId: 'fb-skew' });
    app = initializeApp({ projectId: project }, 'skew-test');
    t = await startGateway(
      { authMode: 'firebase', tokenExpiryGraceMs: 300 },
      { auth: new FirebaseAuthenticator(app, 'livebus_service') },
    );
  });
  afterAll(async () => {
    await t.close();
    await deleteApp(app);
    await stub.close();
    delete process.env.FIREBASE_AUTH_EMULATOR_HOST;
  });

  it('refuses a token that expired 2 s ago everywhere: firebase-admin allows no skew on exp', async () => {
    const outcome = await waysIn(
      t,
      'fb-skew',
      unsignedIdToken(project, 'fb-skew', {}, -2),
      unsignedIdToken(project, 'fb-skew', {}, 600),
    );
    expect(outcome).toEqual({
      hello: CloseCode.AuthFailed,
      auth: 'not_authenticated',
      afterAuth: 'rpc_result',
      rpc: 401,
    });
  });
});
