import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CloseCode } from '@livebus/protocol';
import { waitFor } from '@livebus/test-support';
import { exportJWK, generateKeyPair, type JWK, type KeyLike, SignJWT } from 'jose';
import { AuthError } from '../src/auth/authenticator';
import { JwtAuthenticator, signJwt } from '../src/auth/jwt-authenticator';
import { startGateway, TestClient, type TestGateway } from './helpers';

const ISSUER = 'https://idp.test/';
const AUDIENCE = 'livebus-test';
const now = () => Math.floor(Date.now() / 1000);

/** A signing key of the fake identity provider; only its public half is published. */
interface IdpKey {
  kid: string;
  alg: 'RS256' | 'ES256';
  privateKey: KeyLike;
  jwk: JWK;
}

async function idpKey(kid: string, alg: 'RS256' | 'ES256'): Promise<IdpKey> {
  const { publicKey, privateKey } = await generateKeyPair(alg);
  return { kid, alg, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } };
}

/** A JWKS endpoint on 127.0.0.1:0 serving whatever keys the test puts in `keys`, counting fetches. */
interface JwksServer {
  url: string;
  keys: IdpKey[];
  fetches: number;
  close(): Promise<void>;
}

async function startJwksServer(keys: IdpKey[]): Promise<JwksServer> {
  const jwks = { keys, fetches: 0 } as JwksServer;
  const server: Server = createServer((req, res) => {
    if (req.url !== '/.well-known/jwks.json') {
      res.writeHead(404).end();
      return;
    }
    jwks.fetches++;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ keys: jwks.keys.map((k) => k.jwk) }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return Object.assign(jwks, {
    url: `http://127.0.0.1:${port}/.well-known/jwks.json`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  });
}

/** A token as the identity provider would issue it; `claims` override the defaults. */
function idpToken(key: IdpKey, claims: Record<string, unknown> = {}, header: Record<string, unknown> = {}) {
  return new SignJWT({ sub: 'idp-user', iss: ISSUER, aud: AUDIENCE, iat: now(), exp: now() + 600, ...claims })
    .setProtectedHeader({ alg: key.alg, kid: key.kid, ...header })
    .sign(key.privateKey);
}

const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');

describe('AUTH_MODE=jwt with a JWKS (RS256 / ES256 from an identity provider)', () => {
  let rsa: IdpKey;
  let ec: IdpKey;
  let unpublished: IdpKey;
  let idp: JwksServer;
  let t: TestGateway;

  beforeAll(async () => {
    [rsa, ec, unpublished] = await Promise.all([
      idpKey('rsa-1', 'RS256'),
      idpKey('ec-1', 'ES256'),
      idpKey('rsa-1', 'RS256'), // same kid as a published key, different key pair
    ]);
    idp = await startJwksServer([rsa, ec]);
    // Built from the configuration alone (no deps.auth): the path the CLI takes.
    t = await startGateway({ authMode: 'jwt', jwtJwksUrl: idp.url, jwtIssuer: ISSUER, jwtAudience: AUDIENCE });
  });
  afterAll(async () => {
    await t.close();
    await idp.close();
  });

  const welcomeUid = async (token: string) => {
    const c = new TestClient(t.url);
    const welcome = await c.hello({ token });
    await c.close();
    return welcome.user_id;
  };
  const closeCode = async (token: string) => {
    const c = new TestClient(t.url);
    await c.opened;
    c.send({ type: 'hello', v: 1, token });
    return (await c.closed).code;
  };
  const lastFailure = () => t.logs.of('ws_auth_failed').at(-1);

  it('accepts RS256 and ES256 tokens signed by a published key', async () => {
    expect(await welcomeUid(await idpToken(rsa, { sub: 'rs-user' }))).toBe('rs-user');
    expect(await welcomeUid(await idpToken(ec, { sub: 'es-user' }))).toBe('es-user');
    expect(idp.fetches).toBe(1);
  });

  it('accepts the token in the Authorization header too', async () => {
    const c = new TestClient(t.url, { authorization: `Bearer ${await idpToken(ec, { sub: 'header-user' })}` });
    expect((await c.hello()).user_id).toBe('header-user');
    await c.close();
  });

  it('refuses a wrong issuer, a wrong audience or a missing one with 4001', async () => {
    for (const claims of [
      { iss: 'https://evil.test/' },
      { aud: 'another-app' },
      { iss: undefined },
      { aud: undefined },
    ]) {
      expect(await closeCode(await idpToken(rsa, claims))).toBe(CloseCode.AuthFailed);
      expect(lastFailure()?.reason).toBe('invalid');
    }
  });

  it('refuses an expired token with reason expired', async () => {
    expect(await closeCode(await idpToken(ec, { exp: now() - 120 }))).toBe(CloseCode.AuthFailed);
    expect(lastFailure()?.reason).toBe('expired');
  });

  it('refuses alg none, and HS256 when only a JWKS is configured', async () => {
    const claims = { sub: 'u1', iss: ISSUER, aud: AUDIENCE, exp: now() + 600 };
    expect(await closeCode(`${b64({ alg: 'none' })}.${b64(claims)}.`)).toBe(CloseCode.AuthFailed);
    expect(await closeCode(`${b64({ alg: 'none', kid: rsa.kid })}.${b64(claims)}.`)).toBe(CloseCode.AuthFailed);
    expect(await closeCode(signJwt(claims, 'a-secret-the-gateway-does-not-know-at-all'))).toBe(CloseCode.AuthFailed);
    // The classic confusion: HS256 "signed" with the provider's public key as the secret.
    expect(await closeCode(signJwt(claims, JSON.stringify(rsa.jwk)))).toBe(CloseCode.AuthFailed);
    expect(
      t.logs
        .of('ws_auth_failed')
        .slice(-4)
        .map((f) => f.reason),
    ).toEqual(['invalid', 'invalid', 'invalid', 'invalid']);
  });

  it('refuses a token whose signature no published key verifies', async () => {
    expect(await closeCode(await idpToken(unpublished))).toBe(CloseCode.AuthFailed);
    // An RS256 key's kid on an ES256 token: no key of the right type matches.
    expect(await closeCode(await idpToken(ec, {}, { kid: rsa.kid }))).toBe(CloseCode.AuthFailed);
  });

  it('refuses a sub of 129 characters, accepts 128', async () => {
    expect(await welcomeUid(await idpToken(rsa, { sub: 'x'.repeat(128) }))).toHaveLength(128);
    expect(await closeCode(await idpToken(rsa, { sub: 'x'.repeat(129) }))).toBe(CloseCode.AuthFailed);
    expect(lastFailure()?.reason).toBe('invalid');
  });
});

describe('JwtAuthenticator with a JWKS', () => {
  let first: IdpKey;
  let idp: JwksServer;
  beforeAll(async () => {
    first = await idpKey('k1', 'RS256');
    idp = await startJwksServer([first]);
  });
  afterAll(() => idp.close());

  it('fills expiresAtMs from exp, and leaves it out for a token without exp', async () => {
    const auth = new JwtAuthenticator({ jwksUrl: idp.url, serviceRoleClaim: 'svc' });
    const exp = now() + 300;
    expect(await auth.authenticate({ token: await idpToken(first, { exp, svc: true }) })).toEqual({
      uid: 'idp-user',
      service: true,
      expiresAtMs: exp * 1000,
    });
    expect(await auth.authenticate({ token: await idpToken(first, { exp: undefined }) })).not.toHaveProperty(
      'expiresAtMs',
    );
  });

  it('fetches the key set again when a token names an unknown kid (key rotation)', async () => {
    const auth = new JwtAuthenticator({ jwksUrl: idp.url, serviceRoleClaim: 'svc', jwksCooldownMs: 0 });
    await auth.authenticate({ token: await idpToken(first) });
    const before = idp.fetches;

    const rotated = await idpKey('k2', 'ES256');
    idp.keys = [rotated];
    const principal = await auth.authenticate({ token: await idpToken(rotated, { sub: 'after-rotation' }) });
    expect(principal.uid).toBe('after-rotation');
    expect(idp.fetches).toBe(before + 1);
    // The retired key is gone from the set now, so its tokens are refused.
    await expect(auth.authenticate({ token: await idpToken(first) })).rejects.toMatchObject({ reason: 'invalid' });
    idp.keys = [first];
  });

  it('does not refetch for every unknown kid: the cooldown bounds calls to the provider', async () => {
    const auth = new JwtAuthenticator({ jwksUrl: idp.url, serviceRoleClaim: 'svc' });
    await auth.authenticate({ token: await idpToken(first) });
    const before = idp.fetches;
    const stranger = await idpKey('made-up', 'RS256');
    for (let i = 0; i < 3; i++) {
      await expect(auth.authenticate({ token: await idpToken(stranger) })).rejects.toMatchObject({
        reason: 'invalid',
      });
    }
    expect(idp.fetches).toBe(before);
  });

  it('refuses (invalid, JWKS unavailable) while the key set cannot be fetched', async () => {
    const gone = await startJwksServer([]);
    await gone.close();
    const auth = new JwtAuthenticator({ jwksUrl: gone.url, serviceRoleClaim: 'svc' });
    const error = await auth.authenticate({ token: await idpToken(first) }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AuthError);
    expect(error).toMatchObject({ reason: 'invalid', message: expect.stringMatching(/^JWKS unavailable/) });
  });

  it('with a secret and a JWKS, accepts both HS256 and the provider tokens', async () => {
    const secret = 'a-service-secret-that-is-long-enough-42';
    const auth = new JwtAuthenticator({ secret, jwksUrl: idp.url, serviceRoleClaim: 'svc' });
    expect((await auth.authenticate({ token: signJwt({ sub: 'app', svc: true }, secret) })).service).toBe(true);
    expect((await auth.authenticate({ token: await idpToken(first) })).uid).toBe('idp-user');
  });
});

describe('a JWKS endpoint in trouble', () => {
  let key: IdpKey;
  beforeAll(async () => {
    key = await idpKey('k-trouble', 'ES256');
  });

  /** A JWKS endpoint that answers as `mode` says: the key set, 503, or headers and half a body, then nothing. */
  async function troubledIdp() {
    const state = { mode: 'ok' as 'ok' | 'down' | 'stall', fetches: 0 };
    const server = createServer((_req, res) => {
      state.fetches++;
      if (state.mode === 'down') return void res.writeHead(503).end();
      const body = JSON.stringify({ keys: [key.jwk] });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(body.length) });
      if (state.mode === 'stall') return void res.write(body.slice(0, 10));
      res.end(body);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const close = () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      });
    return { state, url: `http://127.0.0.1:${port}/jwks`, close };
  }

  it('a provider that sends its headers and stalls is refused verifier_unavailable within the timeout, and tried again after', async () => {
    const idp = await troubledIdp();
    try {
      idp.state.mode = 'stall';
      // The timeout bounds the fetch once the provider answers too: long enough for a slow
      // machine, where only the stalled fetch waits for it.
      const auth = new JwtAuthenticator({ jwksUrl: idp.url, serviceRoleClaim: 'svc', jwksTimeoutMs: 2_000 });
      const token = await idpToken(key);
      const [a, b] = await Promise.all([
        auth.authenticate({ token }).catch((e: unknown) => e),
        auth.authenticate({ token }).catch((e: unknown) => e),
      ]);
      for (const e of [a, b]) {
        expect(e).toMatchObject({
          code: 'verifier_unavailable',
          message: expect.stringMatching(/no answer within 2000 ms/),
        });
      }
      // Both tokens shared one fetch; once the provider answers, the next token fetches again.
      expect(idp.state.fetches).toBe(1);
      idp.state.mode = 'ok';
      expect((await auth.authenticate({ token })).uid).toBe('idp-user');
      expect(idp.state.fetches).toBe(2);
    } finally {
      await idp.close();
    }
  });

  it('keys fetched before keep verifying while the provider is down, past their age; fetched again once it is back', async () => {
    const idp = await troubledIdp();
    let clock = Date.now();
    const refreshErrors: string[] = [];
    try {
      const auth = new JwtAuthenticator({
        jwksUrl: idp.url,
        serviceRoleClaim: 'svc',
        jwksMaxAgeMs: 600_000,
        now: () => clock,
        onJwksRefreshError: (message) => refreshErrors.push(message),
      });
      // A token valid for the whole test, on the moved clock too.
      const token = await idpToken(key, { exp: now() + 7_200 });
      expect((await auth.authenticate({ token })).uid).toBe('idp-user');
      idp.state.mode = 'down';
      clock += 11 * 60_000;
      expect((await auth.authenticate({ token })).uid).toBe('idp-user');
      await waitForFetches(idp.state, 2);
      // The operator hears of the failed refresh (the token above was still accepted).
      await waitForCount(() => refreshErrors.length, 1, 'the refresh error reported');
      expect(refreshErrors[0]).toMatch(/^JWKS unavailable: .*: HTTP 503$/);
      // Within the cooldown (30 s) after that failed fetch: no other fetch.
      expect((await auth.authenticate({ token })).uid).toBe('idp-user');
      expect(idp.state.fetches).toBe(2);
      idp.state.mode = 'ok';
      clock += 31_000;
      expect((await auth.authenticate({ token })).uid).toBe('idp-user');
      await waitForFetches(idp.state, 3);
    } finally {
      await idp.close();
    }
  });
});

/** Waits until `count()` reaches `n` (the named waitFor failure if it never does), then asserts no more. */
async function waitForCount(count: () => number, n: number, what = `a count of ${n}`): Promise<void> {
  await waitFor(() => count() >= n, what, 10_000);
  expect(count()).toBe(n);
}

/** Waits until the fake provider counted `n` fetches (the refetch of old keys runs behind the token). */
function waitForFetches(state: { fetches: number }, n: number): Promise<void> {
  return waitForCount(() => state.fetches, n, `${n} JWKS fetches`);
}
