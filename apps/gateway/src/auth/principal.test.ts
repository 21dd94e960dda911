import { AuthError } from './authenticator';
import { keptClaims, ownClaim, toPrincipal } from './principal';

describe('toPrincipal', () => {
  it('keeps a valid uid, the service flag and the expiry when there is one', () => {
    expect(toPrincipal('u1', false, 1_800_000_000_000)).toEqual({
      uid: 'u1',
      service: false,
      expiresAtMs: 1_800_000_000_000,
    });
    expect(toPrincipal('app', true)).toEqual({ uid: 'app', service: true });
    expect(toPrincipal('app', true)).not.toHaveProperty('expiresAtMs');
    expect(toPrincipal('x'.repeat(128), false).uid).toHaveLength(128);
  });

  it('holds the expiry in whole milliseconds, as frames carry it (a JWT exp may have a fraction)', () => {
    const expS = 1_800_000_000.1234; // * 1000 is 1800000000123.4 (not whole)
    expect(toPrincipal('u1', false, expS * 1000).expiresAtMs).toBe(1_800_000_000_123);
    expect(toPrincipal('u1', false, 1_800_000_000_999.9).expiresAtMs).toBe(1_800_000_000_999);
    expect(toPrincipal('u1', false, Number.POSITIVE_INFINITY).expiresAtMs).toBe(Number.MAX_SAFE_INTEGER);
    expect(toPrincipal('u1', false, 1e303).expiresAtMs).toBe(Number.MAX_SAFE_INTEGER);
  });

  it.each([
    ['129 characters', 'x'.repeat(129)],
    ['empty', ''],
    ['a number', 42],
    ['missing', undefined],
  ])('refuses a uid that is %s with AuthError invalid, without echoing it', (_, uid) => {
    let error: unknown;
    try {
      toPrincipal(uid, false);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(AuthError);
    expect(error).toMatchObject({ reason: 'invalid', message: expect.stringMatching(/^user id /) });
    expect((error as Error).message).not.toContain('xxxxxxxx');
    expect((error as Error).cause).toBeDefined();
  });
});

describe('keptClaims', () => {
  const payload = { sub: 'u1', email: 'a@b.c', company_ids: ['acme'], firebase: { sign_in_provider: 'password' } };

  it('keeps only the claims named that the token has, and nothing when none of them is there', () => {
    expect(keptClaims(payload, ['company_ids', 'missing'])).toEqual({ company_ids: ['acme'] });
    expect(keptClaims(payload, ['missing'])).toBeUndefined();
    expect(keptClaims(payload, [])).toBeUndefined();
  });

  it('keeps the whole payload when no names are given', () => {
    expect(keptClaims(payload, undefined)).toBe(payload);
  });

  it('keeps a claim named like an inherited property as a claim, and never reads inherited ones', () => {
    const hostile = JSON.parse('{"__proto__": ["acme"], "sub": "u1"}') as Record<string, unknown>;
    const kept = keptClaims(hostile, ['__proto__', 'toString']);
    expect(ownClaim(kept, '__proto__')).toEqual(['acme']);
    expect(ownClaim(kept, 'toString')).toBeUndefined();
  });
});
