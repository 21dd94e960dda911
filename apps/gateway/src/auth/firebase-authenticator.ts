import type { App } from 'firebase-admin/app';
import { getAuth } from 'firebase-admin/auth';
import { AuthError, type Authenticator, type Principal } from './authenticator';

/** Verifies Firebase ID tokens with firebase-admin. */
export class FirebaseAuthenticator implements Authenticator {
  readonly mode = 'firebase' as const;
  readonly #app: App;
  readonly #serviceRoleClaim: string;

  constructor(app: App, serviceRoleClaim: string) {
    this.#app = app;
    this.#serviceRoleClaim = serviceRoleClaim;
  }

  async authenticate({ token }: { token?: string | undefined }): Promise<Principal> {
    if (!token) throw new AuthError('missing', 'no token');
    try {
      // checkRevoked=false: revocation needs a network lookup per connect; sessions are short-lived anyway.
      const decoded = await getAuth(this.#app).verifyIdToken(token);
      return { uid: decoded.uid, service: Boolean(decoded[this.#serviceRoleClaim]) };
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
  }
}
