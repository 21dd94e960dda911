import { AuthError } from './authenticator';
import { JwtAuthenticator, signJwt } from './jwt-authenticator';
import { NoneAuthenticator } from './none-authenticator';

const SECRET = 'unit-test-secret-that-is-long-enough-0001';
const NOW_S = 1_800_000_000;
const auth = new JwtAuthenticator({ secret: SECRET, serviceRoleClaim: 'svc', now: () => NOW_S * 1000 });

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
    expect(await auth.authenticate({ token: signJwt({ sub: 'u1', exp: NOW_S + 60 }, SECRET) })).toEqual({
      uid: 'u1',
      service: false,
    });
    expect(await auth.authenticate({ token: signJwt({ sub: 'app', svc: true }, SECRET) })).toEqual({
      uid: 'app',
      service: true,
    });
  });

  it('tolerates 30 s of clock skew on exp and nbf, not more', async () => {
    expect(await reason(signJwt({ sub: 'u', exp: NOW_S - 20 }, SECRET))).toBe('accepted');
    expect(await reason(signJwt({ sub: 'u', exp: NOW_S - 40 }, SECRET))).toBe('expired');
    expect(await reason(signJwt({ sub: 'u', nbf: NOW_S + 20 }, SECRET))).toBe('accepted');
    expect(await reason(signJwt({ sub: 'u', nbf: NOW_S + 40 }, SECRET))).toBe('invalid');
  });

  it('refuses missing, malformed, unsigned, re-signed and sub-less tokens', async () => {
    expect(await reason(undefined)).toBe('missing');
    expect(await reason('a.b')).toBe('invalid');
    expect(await reason('!!.@@.##')).toBe('invalid');
    const good = signJwt({ sub: 'u' }, SECRET);
    const [h, p] = good.split('.');
    expect(await reason(`${h}.${p}.`)).toBe('invalid');
    const none = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${p}.`;
    expect(await reason(none)).toBe('invalid');
    const tampered = `${h}.${Buffer.from('{"sub":"admin"}').toString('base64url')}.${good.split('.')[2]}`;
    expect(await reason(tampered)).toBe('invalid');
    expect(await reason(signJwt({ exp: NOW_S + 60 }, SECRET))).toBe('invalid');
  });
});

describe('NoneAuthenticator (development)', () => {
  it('takes the user from the hello or the bearer; service:<name> acts as a service caller', async () => {
    const none = new NoneAuthenticator();
    expect(await none.authenticate({ userId: 'dev' })).toEqual({ uid: 'dev', service: false });
    expect(await none.authenticate({ token: 'dev2' })).toEqual({ uid: 'dev2', service: false });
    expect(await none.authenticate({ token: 'service:backend' })).toEqual({ uid: 'backend', service: true });
    await expect(none.authenticate({})).rejects.toMatchObject({ reason: 'missing' });
  });
});
