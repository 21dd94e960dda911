import type { AuthFailureReason } from '@livebus/protocol';
import type { App } from 'firebase-admin/app';
import type { Auth, DecodedIdToken } from 'firebase-admin/auth';
import { AuthError, type Authenticator, type Principal } from './authenticator';
import { isServiceClaim, keptClaims, ownClaim, toPrincipal } from './principal';

/**
 * Verifies Firebase ID tokens with firebase-admin. `firebase-admin/auth` is
 * loaded on the first token, not with the gateway: the other auth modes never
 * pay for it (about a second of start-up on a busy 2-core machine).
 */
export class FirebaseAuthenticator implements Authenticator {
  readonly mode = 'firebase' as const;
  readonly #app: App | Promise<App>;
  readonly #serviceRoleClaim: string;
  readonly #keepClaims: readonly string[] | undefined;
  #auth: Promise<Auth> | undefined;

  /**
   * @param app - the firebase-admin app whose project the tokens must belong to
   *   (or a promise of it, for an app made after a lazy import of firebase-admin)
   * @param serviceRoleClaim - custom claim that marks a service caller when it is `true`
   *   (or the string `"true"`): {@link isServiceClaim}
   * @param keepClaims - claims a session's principal keeps ({@link Principal.claims}); the rest of
   *   the decoded token is dropped. Undefined: the whole decoded token is kept.
   */
  constructor(app: App | Promise<App>, serviceRoleClaim: string, keepClaims?: readonly string[]) {
    this.#app = app;
    this.#serviceRoleClaim = serviceRoleClaim;
    this.#keepClaims = keepClaims;
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
    if (!token) throw new AuthError('missing_token', 'no token');
    let decoded: DecodedIdToken;
    try {
      // checkRevoked=false: revocation needs a network lookup per connect; sessions are short-lived anyway.
      decoded = await (await this.#getAuth()).verifyIdToken(token);
    } catch (cause) {
      const code = (cause as { code?: string }).code ?? '';
      throw new AuthError(
        firebaseReason(code, (cause as Error).message ?? ''),
        `firebase: ${code || 'verification failed'}`,
        {
          cause,
        },
      );
    }
    // Outside the try: a bad uid is our refusal, not a firebase verification failure.
    return toPrincipal(
      decoded.uid,
      isServiceClaim(ownClaim(decoded, this.#serviceRoleClaim)),
      decoded.exp * 1000,
      keptClaims(decoded, this.#keepClaims),
    );
  }
}

/** firebase-admin error codes that name the reason themselves. */
const FIREBASE_CODES: Record<string, AuthFailureReason> = {
  'auth/id-token-expired': 'token_expired',
  'auth/id-token-revoked': 'token_revoked',
  'auth/user-not-found': 'invalid_subject',
  'auth/internal-error': 'verifier_unavailable',
};

/**
 * firebase-admin reports most refusals as `auth/argument-error` and says which
 * check failed only in its message: read the claim it names. A message it
 * words differently in a later version falls back to `invalid_token`.
 */
const FIREBASE_MESSAGES: Array<[RegExp, AuthFailureReason]> = [
  // Google's public keys could not be fetched (unreachable, an HTTP error): not the token's fault.
  [/^Error while making request|^Error fetching public keys/, 'verifier_unavailable'],
  [/incorrect "aud"/, 'wrong_audience'],
  [/incorrect "iss"/, 'wrong_issuer'],
  [/"sub"/, 'invalid_subject'],
  [/incorrect algorithm/, 'alg_not_allowed'],
  [/invalid signature/, 'bad_signature'],
  [/"kid"/, 'unknown_key'],
  [/Decoding|expects an? |must be a .* string/, 'malformed_token'],
];

/** The reason the peer is told for a firebase-admin verification failure. */
export function firebaseReason(code: string, message: string): AuthFailureReason {
  const byCode = FIREBASE_CODES[code];
  if (byCode) return byCode;
  if (code === 'auth/argument-error') {
    for (const [pattern, reason] of FIREBASE_MESSAGES) if (pattern.test(message)) return reason;
  }
  return 'invalid_token';
}
