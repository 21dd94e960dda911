import type { App } from 'firebase-admin/app';
import type { Auth, DecodedIdToken } from 'firebase-admin/auth';
import { AuthError, type Authenticator, type Principal } from './authenticator';
import { toPrincipal } from './principal';

/**
 * Verifies Firebase ID tokens with firebase-admin. `firebase-admin/auth` is
 * loaded on the first token, not with the gateway: the other auth modes never
 * pay for it (about a second of start-up on a busy 2-core machine).
 */
export class FirebaseAuthenticator implements Authenticator {
  readonly mode = 'firebase' as const;
  readonly #app: App | Promise<App>;
  readonly #serviceRoleClaim: string;
  #auth: Promise<Auth> | undefined;

  /**
   * @param app - the firebase-admin app whose project the tokens must belong to
   *   (or a promise of it, for an app made after a lazy import of firebase-admin)
   * @param serviceRoleClaim - custom claim whose truthy value marks a service caller
   */
  constructor(app: App | Promise<App>, serviceRoleClaim: string) {
    this.#app = app;
    this.#serviceRoleClaim = serviceRoleClaim;
    // Loaded in the background from now on, so the first token does not wait for it.
    this.#getAuth().catch(() => {
      // Reported by authenticate(), as a verification failure of each token.
    });
  }

  #getAuth(): Promise<Auth> {
    this.#auth ??= Promise.all([this.#app, import('firebase-admin/auth')]).then(([app, m]) => m.getAuth(app));
    return this.#auth;
  }

  async authenticate({ token }: { token?: string | undefined }): Promise<Principal> {
    if (!token) throw new AuthError('missing', 'no token');
    let decoded: DecodedIdToken;
    try {
      // checkRevoked=false: revocation needs a network lookup per connect; sessions are short-lived anyway.
      decoded = await (await this.#getAuth()).verifyIdToken(token);
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
