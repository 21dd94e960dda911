import type { App } from 'firebase-admin/app';
import { type DecodedIdToken, getAuth } from 'firebase-admin/auth';
import { AuthError, type Authenticator, type Principal } from './authenticator';
import { toPrincipal } from './principal';

/** Verifies Firebase ID tokens with firebase-admin. */
export class FirebaseAuthenticator implements Authenticator {
  readonly mode = 'firebase' as const;
  readonly #app: App;
  readonly #serviceRoleClaim: string;

  /**
   * @param app - the firebase-admin app whose project the tokens must belong to
   * @param serviceRoleClaim - custom claim whose truthy value marks a service caller
   */
  constructor(app: App, serviceRoleClaim: string) {
    this.#app = app;
    this.#serviceRoleClaim = serviceRoleClaim;
  }

  async authenticate({ token }: { token?: string | undefined }): Promise<Principal> {
    if (!token) throw new AuthError('missing', 'no token');
    let decoded: DecodedIdToken;
    try {
      // checkRevoked=false: revocation needs a network lookup per connect; sessions are short-lived anyway.
      decoded = await getAuth(this.#app).verifyIdToken(token);
    } catch (cause) {
      const code = (cause as { code?: string }).code ?? '';
      throw new AuthError(
        code === 'auth/id-token-expired' ? 'expired' : 'invalid',
        `firebase: ${code || 'verification failed'}`,
        {
          cause,
        },
      );
    }
    // Outside the try: a bad uid is our refusal, not a firebase verification failure.
    return toPrincipal(decoded.uid, Boolean(decoded[this.#serviceRoleClaim]), decoded.exp * 1000);
  }
}
