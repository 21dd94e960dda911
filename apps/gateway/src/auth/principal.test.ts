import { AuthError } from './authenticator';
import { toPrincipal } from './principal';

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
