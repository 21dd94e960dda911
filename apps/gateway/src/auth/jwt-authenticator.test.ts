import { createHmac } from 'node:crypto';
import { AuthError } from './authenticator';
import { JwtAuthenticator, SIGN_JWT_DEFAULT_EXPIRES_IN_S, signJwt } from './jwt-authenticator';
import { NoneAuthenticator } from './none-authenticator';

const SECRET = 'unit-test-secret-that-is-long-enough-0001';
const NOW_S = 1_800_000_000;
const auth = new JwtAuthenticator({ secret: SECRET, serviceRoleClaim: 'svc', now: () => NOW_S * 1000 });
/**
 * A token with exactly the claims given: no `exp` unless the test gives one (signJwt's default
 * would be an hour from the real clock, and the authenticators here run at NOW_S).
 */
const sign = (payload: Record<string, unknown>, secret = SECRET) => signJwt(payload, secret, { expiresInS: false });

/** What the peer is told (the 4001 close reason), or 'accepted'. */
async function code(authenticator: JwtAuthenticator, token: string | undefined) {
  try {
    await authenticator.authenticate({ token });
    return 'accepted';
  } catch (e) {
    expect(e).toBeInstanceOf(AuthError);
    return (e as AuthError).code;
  }
}

async function reason(token: string | undefined) {
  try {
    await auth.authenticate({ token });
    return 'accepted';
  } catch (e) {
    expect(e).toBeInstanceOf(AuthError);
    return (e as AuthError).reason;
  }
}

describe('JwtAuthenticator', () => {
  it('accepts a valid HS256 token; sub is the user, the service claim marks a service caller', async () => {
    expect(await auth.authenticate({ token: sign({ sub: 'u1', exp: NOW_S + 60 }, SECRET) })).toEqual({
      uid: 'u1',
      service: false,
      expiresAtMs: (NOW_S + 60) * 1000,
    });
    const service = await auth.authenticate({ token: sign({ sub: 'app', svc: true }, SECRET) });
    expect(service).toEqual({ uid: 'app', service: true });
    // A token without exp does not expire: the property is absent, not NaN or 0.
    expect(service).not.toHaveProperty('expiresAtMs');
  });

  it('keeps on the principal only the claims it is told to keep (keepClaims), else the whole payload', async () => {
    const token = sign({ sub: 'u', email: 'a@b.c', company_ids: ['acme'], exp: NOW_S + 60 }, SECRET);
    const picky = new JwtAuthenticator({
      secret: SECRET,
      serviceRoleClaim: 'svc',
      now: () => NOW_S * 1000,
      keepClaims: ['company_ids'],
    });
    expect((await picky.authenticate({ token })).claims).toEqual({ company_ids: ['acme'] });
    const none = new JwtAuthenticator({
      secret: SECRET,
      serviceRoleClaim: 'svc',
      now: () => NOW_S * 1000,
      keepClaims: [],
    });
    expect((await none.authenticate({ token })).claims).toBeUndefined();
    expect((await auth.authenticate({ token })).claims).toMatchObject({ email: 'a@b.c', company_ids: ['acme'] });
  });

  it('holds sub to the protocol user id: 128 characters pass, 129 and non-strings are refused', async () => {
    expect((await auth.authenticate({ token: sign({ sub: 'x'.repeat(128) }, SECRET) })).uid).toHaveLength(128);
    expect(await reason(sign({ sub: 'x'.repeat(129) }, SECRET))).toBe('invalid');
    await expect(auth.authenticate({ token: sign({ sub: 'x'.repeat(129) }, SECRET) })).rejects.toThrow(/user id/);
    expect(await reason(sign({ sub: 42 }, SECRET))).toBe('invalid');
    expect(await reason(sign({ sub: '' }, SECRET))).toBe('invalid');
  });

  it('checks iss and aud when configured, on HS256 tokens too', async () => {
    const pinned = new JwtAuthenticator({
      secret: SECRET,
      issuer: 'https://idp.example',
      audience: 'livebus',
      serviceRoleClaim: 'svc',
      now: () => NOW_S * 1000,
    });
    const check = (claims: Record<string, unknown>) =>
      pinned.authenticate({ token: sign({ sub: 'u', ...claims }, SECRET) }).then(
        (p) => p.uid,
        (e: AuthError) => e.reason,
      );
    expect(await check({ iss: 'https://idp.example', aud: 'livebus' })).toBe('u');
    expect(await check({ iss: 'https://idp.example', aud: ['other', 'livebus'] })).toBe('u');
    expect(await check({ iss: 'https://evil.example', aud: 'livebus' })).toBe('invalid');
    expect(await check({ iss: 'https://idp.example', aud: 'other' })).toBe('invalid');
    expect(await check({})).toBe('invalid');
  });

  it('refuses HS256 when only a JWKS is configured, before fetching anything', async () => {
    // Port 9 (discard) on loopback: a fetch would fail as "JWKS unavailable", not "alg not allowed".
    const jwksOnly = new JwtAuthenticator({ jwksUrl: 'http://127.0.0.1:9/jwks.json', serviceRoleClaim: 'svc' });
    await expect(jwksOnly.authenticate({ token: sign({ sub: 'u' }, SECRET) })).rejects.toMatchObject({
      reason: 'invalid',
      message: 'token alg not allowed',
    });
  });

  it('needs a secret or a JWKS URL', () => {
    expect(() => new JwtAuthenticator({ serviceRoleClaim: 'svc' })).toThrow(/secret or a jwksUrl/);
  });

  it('tolerates 5 s of clock skew on exp and nbf by default (TOKEN_CLOCK_TOLERANCE_MS), not more', async () => {
    expect(await reason(sign({ sub: 'u', exp: NOW_S - 4 }, SECRET))).toBe('accepted');
    expect(await reason(sign({ sub: 'u', exp: NOW_S - 5 }, SECRET))).toBe('expired');
    expect(await reason(sign({ sub: 'u', exp: NOW_S - 25 }, SECRET))).toBe('expired');
    expect(await reason(sign({ sub: 'u', nbf: NOW_S + 5 }, SECRET))).toBe('accepted');
    expect(await reason(sign({ sub: 'u', nbf: NOW_S + 6 }, SECRET))).toBe('invalid');
  });

  it('takes the tolerance in milliseconds: 0 accepts nothing past exp, 2 500 accepts 2 s but not 3', async () => {
    const check = async (clockToleranceMs: number, exp: number) =>
      new JwtAuthenticator({ secret: SECRET, serviceRoleClaim: 'svc', clockToleranceMs, now: () => NOW_S * 1000 })
        .authenticate({ token: sign({ sub: 'u', exp }, SECRET) })
        .then(
          () => 'accepted',
          (e: AuthError) => e.reason,
        );
    expect(await check(0, NOW_S + 1)).toBe('accepted');
    expect(await check(0, NOW_S)).toBe('expired');
    expect(await check(2_500, NOW_S - 2)).toBe('accepted');
    expect(await check(2_500, NOW_S - 3)).toBe('expired');
  });

  it('refuses missing, malformed, unsigned, re-signed and sub-less tokens', async () => {
    expect(await reason(undefined)).toBe('missing');
    expect(await reason('a.b')).toBe('invalid');
    expect(await reason('!!.@@.##')).toBe('invalid');
    const good = sign({ sub: 'u' }, SECRET);
    const [h, p] = good.split('.');
    expect(await reason(`${h}.${p}.`)).toBe('invalid');
    const none = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${p}.`;
    expect(await reason(none)).toBe('invalid');
    const tampered = `${h}.${Buffer.from('{"sub":"admin"}').toString('base64url')}.${good.split('.')[2]}`;
    expect(await reason(tampered)).toBe('invalid');
    expect(await reason(sign({ exp: NOW_S + 60 }, SECRET))).toBe('invalid');
  });
});

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
/** An HS256 token jose decides (crit b64 with b64 true is an ordinary token hs256.ts leaves to jose). */
const viaJose = (payload: Record<string, unknown>) => {
  const head = `${b64({ alg: 'HS256', crit: ['b64'], b64: true })}.${b64(payload)}`;
  return `${head}.${createHmac('sha256', SECRET).update(head).digest('base64url')}`;
};

describe('JwtAuthenticator: tokens without exp (requireExp, JWT_REQUIRE_EXP)', () => {
  const strict = new JwtAuthenticator({
    secret: SECRET,
    serviceRoleClaim: 'svc',
    requireExp: true,
    now: () => NOW_S * 1000,
  });

  it('refuses a token without exp as invalid_token, on hs256.ts and on jose alike, a service token too', async () => {
    for (const payload of [{ sub: 'u' }, { sub: 'app', svc: true }]) {
      for (const token of [sign(payload), viaJose(payload)]) {
        expect([payload, await code(strict, token)]).toEqual([payload, 'invalid_token']);
      }
    }
    await expect(strict.authenticate({ token: sign({ sub: 'u' }) })).rejects.toThrow(/exp/);
  });

  it('accepts the same tokens with an exp, and checks everything else first (a forged one is bad_signature)', async () => {
    for (const token of [sign({ sub: 'u', exp: NOW_S + 60 }), viaJose({ sub: 'u', exp: NOW_S + 60 })]) {
      expect(await strict.authenticate({ token })).toEqual({
        uid: 'u',
        service: false,
        expiresAtMs: (NOW_S + 60) * 1000,
      });
    }
    expect(await code(strict, sign({ sub: 'u' }, 'another-secret-that-is-long-enough-xxxxx'))).toBe('bad_signature');
  });

  it('accepts a token without exp when not required (the default of the class), and it never expires', async () => {
    for (const token of [sign({ sub: 'u' }), viaJose({ sub: 'u' })]) {
      expect(await auth.authenticate({ token })).not.toHaveProperty('expiresAtMs');
    }
  });
});

describe('signJwt', () => {
  const payloadOf = (token: string) =>
    JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
  /** The exp signJwt may have written for a lifetime of `s`, read from the clock around the call. */
  const signedWithin = (make: () => string, s: number) => {
    const before = Math.floor(Date.now() / 1000);
    const token = make();
    const after = Math.floor(Date.now() / 1000);
    const { exp } = payloadOf(token);
    return typeof exp === 'number' && exp >= before + s && exp <= after + s;
  };

  it('adds an exp an hour ahead by default, so a service token it mints does not work for ever', () => {
    expect(SIGN_JWT_DEFAULT_EXPIRES_IN_S).toBe(3600);
    expect(signedWithin(() => signJwt({ sub: 'app', svc: true }, SECRET), 3600)).toBe(true);
  });

  it('takes another lifetime, keeps the payload own exp, and signs none with expiresInS false', () => {
    expect(signedWithin(() => signJwt({ sub: 'u' }, SECRET, { expiresInS: 60 }), 60)).toBe(true);
    expect(payloadOf(signJwt({ sub: 'u', exp: 1_700_000_000 }, SECRET))).toEqual({ sub: 'u', exp: 1_700_000_000 });
    expect(payloadOf(signJwt({ sub: 'u', exp: 1_700_000_000 }, SECRET, { expiresInS: 60 })).exp).toBe(1_700_000_000);
    expect(payloadOf(signJwt({ sub: 'u' }, SECRET, { expiresInS: false }))).toEqual({ sub: 'u' });
    // A lifetime that would mint a token already expired, or no exp at all, is refused.
    for (const expiresInS of [0, -60, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => signJwt({ sub: 'u' }, SECRET, { expiresInS })).toThrow(/expiresInS must be a whole number/);
    }
  });

  it('mints tokens a gateway requiring exp accepts, on the real clock', async () => {
    const strict = new JwtAuthenticator({ secret: SECRET, serviceRoleClaim: 'svc', requireExp: true });
    const principal = await strict.authenticate({ token: signJwt({ sub: 'app', svc: true }, SECRET) });
    expect(principal).toMatchObject({ uid: 'app', service: true, expiresAtMs: expect.any(Number) });
  });
});

describe('JwtAuthenticator: the service claim', () => {
  it.each(['constructor', 'toString', 'hasOwnProperty', '__proto__', 'valueOf'])(
    'serviceRoleClaim %s: only a token carrying that claim itself is a service caller, not every token',
    async (claim) => {
      const named = new JwtAuthenticator({ secret: SECRET, serviceRoleClaim: claim, now: () => NOW_S * 1000 });
      for (const token of [sign({ sub: 'u' }, SECRET), viaJose({ sub: 'u' })]) {
        expect(await named.authenticate({ token })).toEqual({ uid: 'u', service: false });
      }
      // JSON.parse makes even "__proto__" an own property: the claim still works when the token has it.
      const own = JSON.parse(`{"sub":"app",${JSON.stringify(claim)}:true}`) as Record<string, unknown>;
      for (const token of [sign(own, SECRET), viaJose(own)]) {
        expect(await named.authenticate({ token })).toEqual({ uid: 'app', service: true });
      }
    },
  );

  it('makes a service caller of the claim true or "true" only, never of another truthy value', async () => {
    const service = async (value: unknown) => {
      const payload = { sub: 'app', svc: value };
      const verdicts = [];
      for (const token of [sign(payload, SECRET), viaJose(payload)]) {
        verdicts.push((await auth.authenticate({ token })).service);
      }
      return verdicts;
    };
    expect(await service(true)).toEqual([true, true]);
    expect(await service('true')).toEqual([true, true]);
    for (const value of ['false', '0', 'no', 'yes', 'TRUE', 'True', ' true', 1, {}, ['true'], false, null]) {
      expect([value, await service(value)]).toEqual([value, [false, false]]);
    }
  });
});

describe('JwtAuthenticator: the reason the peer is told', () => {
  it('names the failed check with a protocol auth failure reason, never the verifier message', async () => {
    const pinned = new JwtAuthenticator({
      secret: SECRET,
      issuer: 'https://idp.example',
      audience: 'livebus',
      serviceRoleClaim: 'svc',
      now: () => NOW_S * 1000,
    });
    const ok = { sub: 'u', iss: 'https://idp.example', aud: 'livebus' };
    const good = sign(ok, SECRET);
    const [h, p, sig] = good.split('.');
    const cases: Array<[string, string | undefined, string]> = [
      ['no token', undefined, 'missing_token'],
      ['expired', sign({ ...ok, exp: NOW_S - 3600 }, SECRET), 'token_expired'],
      ['not yet valid', sign({ ...ok, nbf: NOW_S + 3600 }, SECRET), 'token_not_yet_valid'],
      ['another secret', sign(ok, 'another-secret-that-is-long-enough-xxxxx'), 'bad_signature'],
      ['tampered payload', `${h}.${Buffer.from('{"sub":"admin"}').toString('base64url')}.${sig}`, 'bad_signature'],
      ['wrong aud', sign({ ...ok, aud: 'other' }, SECRET), 'wrong_audience'],
      ['wrong iss', sign({ ...ok, iss: 'https://evil.example' }, SECRET), 'wrong_issuer'],
      ['no sub', sign({ iss: ok.iss, aud: ok.aud }, SECRET), 'invalid_subject'],
      ['sub too long', sign({ ...ok, sub: 'x'.repeat(129) }, SECRET), 'invalid_subject'],
      ['alg none', `${Buffer.from('{"alg":"none"}').toString('base64url')}.${p}.`, 'alg_not_allowed'],
      ['not a JWT', 'a.b', 'malformed_token'],
    ];
    for (const [what, token, expected] of cases) {
      expect([what, await code(pinned, token)]).toEqual([what, expected]);
    }
  });

  it('says verifier_unavailable when the JWKS cannot be fetched (the provider is at fault, not the token)', async () => {
    // Port 9 (discard) on loopback: nothing answers.
    const unreachable = new JwtAuthenticator({
      jwksUrl: 'http://127.0.0.1:9/jwks.json',
      serviceRoleClaim: 'svc',
      jwksTimeoutMs: 500,
    });
    const rs = `${Buffer.from('{"alg":"RS256","kid":"k1"}').toString('base64url')}.${Buffer.from('{"sub":"u"}').toString('base64url')}.c2ln`;
    expect(await code(unreachable, rs)).toBe('verifier_unavailable');
  });
});

describe('NoneAuthenticator (development)', () => {
  it('takes the user from the hello or the bearer; service:<name> acts as a service caller', async () => {
    const none = new NoneAuthenticator();
    expect(await none.authenticate({ userId: 'dev' })).toEqual({ uid: 'dev', service: false });
    expect(await none.authenticate({ userId: 'dev' })).not.toHaveProperty('expiresAtMs');
    expect(await none.authenticate({ token: 'dev2' })).toEqual({ uid: 'dev2', service: false });
    expect(await none.authenticate({ token: 'service:backend' })).toEqual({ uid: 'backend', service: true });
    await expect(none.authenticate({})).rejects.toMatchObject({ reason: 'missing', code: 'missing_token' });
  });

  it('refuses a claimed user id of 129 characters, however it is claimed', async () => {
    const none = new NoneAuthenticator();
    const long = 'x'.repeat(129);
    for (const credentials of [{ userId: long }, { token: long }, { token: `service:${long}` }]) {
      await expect(none.authenticate(credentials)).rejects.toMatchObject({ name: 'AuthError', reason: 'invalid' });
    }
  });
});
