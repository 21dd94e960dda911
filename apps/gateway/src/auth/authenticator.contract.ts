import { type AuthFailureReason, AuthFailureReasonSchema } from '@livebus/protocol';
import { AuthError, type Authenticator, type Principal } from './authenticator';

/** A token the mode's verifier must refuse, with the reason it must give. */
export interface RefusedToken {
  token: string;
  code: AuthFailureReason;
}

/** What the contract needs of an authenticator under test. */
export interface AuthenticatorFixture {
  auth: Authenticator;
  /** A credential the mode accepts for `uid` (a service caller's with `service`). */
  token(uid: string, options?: { service?: boolean }): Promise<string>;
  /**
   * For modes that verify tokens (all but `none`): a token for `uid` that expired an
   * hour ago, and one the verifier cannot trust (a forged signature, another project).
   */
  verifies?: {
    expired(uid: string): Promise<string>;
    untrusted(uid: string): Promise<RefusedToken>;
  };
}

/**
 * The contract every {@link Authenticator} passes: run by
 * test/authenticator-contract.int.test.ts against `none`, `jwt` with a local key
 * and with a JWKS endpoint, and `firebase` against the Auth emulator stub. A
 * credential names the user it was issued for; every refusal is an
 * {@link AuthError} whose code is one of the protocol's auth failure reasons.
 */
export function authenticatorContract(
  name: string,
  make: () => Promise<AuthenticatorFixture>,
  options: {
    /** False for a mode that takes any text as the user's name (`none`): it has no expired or untrusted tokens. @default true */
    verifiesTokens?: boolean;
  } = {},
): void {
  describe(`Authenticator contract: ${name}`, () => {
    /** What the peer would be told: the refusal's code, or the principal. */
    const outcome = async (auth: Authenticator, token: string | undefined): Promise<Principal | AuthFailureReason> => {
      try {
        return await auth.authenticate({ token });
      } catch (error) {
        expect(error).toBeInstanceOf(AuthError);
        const code = (error as AuthError).code;
        expect(AuthFailureReasonSchema.safeParse(code).success).toBe(true);
        return code;
      }
    };

    it('gives a valid token the principal of its subject, not a service caller', async () => {
      const { auth, token } = await make();
      const principal = await auth.authenticate({ token: await token('contract-user') });
      expect(principal).toMatchObject({ uid: 'contract-user', service: false });
    });

    it("marks a service caller's token as a service", async () => {
      const { auth, token } = await make();
      expect(await auth.authenticate({ token: await token('contract-app', { service: true }) })).toMatchObject({
        uid: 'contract-app',
        service: true,
      });
    });

    it('refuses a missing token with missing_token', async () => {
      const { auth } = await make();
      expect(await outcome(auth, undefined)).toBe('missing_token');
      expect(await outcome(auth, '')).toBe('missing_token');
    });

    it('holds the subject to the protocol user id: 128 characters pass, 129 are refused with invalid_subject', async () => {
      const { auth, token } = await make();
      expect(await outcome(auth, await token('u'.repeat(128)))).toMatchObject({ uid: 'u'.repeat(128) });
      expect(await outcome(auth, await token('u'.repeat(129)))).toBe('invalid_subject');
    });

    if (options.verifiesTokens === false) return;

    it('refuses an expired token with token_expired', async () => {
      const { auth, verifies } = await make();
      expect(await outcome(auth, await verifies!.expired('contract-user'))).toBe('token_expired');
    });

    it('refuses what is not a token at all with malformed_token', async () => {
      const { auth } = await make();
      expect(await outcome(auth, 'not-a-token')).toBe('malformed_token');
      expect(await outcome(auth, 'a.b.c')).toBe('malformed_token');
    });

    it('refuses a token it cannot trust, saying why', async () => {
      const { auth, verifies } = await make();
      const { token, code } = await verifies!.untrusted('contract-user');
      expect(await outcome(auth, token)).toBe(code);
    });
  });
}
