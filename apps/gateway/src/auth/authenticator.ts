import type { AuthFailureReason } from '@livebus/protocol';

/** Who is calling: the user id and whether the caller may act for any user. */
export interface Principal {
  /** The user id, already checked against the protocol's `UserIdSchema` (1..128 characters). */
  uid: string;
  /** A service caller (an app server) may act on any `user_id`. */
  service: boolean;
  /**
   * When the credential stops being valid, in whole ms since the epoch (the token's `exp`, floored).
   * Undefined when the credential does not expire (AUTH_MODE=none, a JWT without `exp`, which
   * AUTH_MODE=jwt accepts only with JWT_REQUIRE_EXP off: the default outside production).
   */
  expiresAtMs?: number | undefined;
  /**
   * The verified token's claims, for decisions that must rest on what the user cannot write
   * (company membership, `listeners/company/`). The authenticators `authenticatorFor` makes keep
   * only the claims the configuration reads (`keepClaims`), not the whole payload; constructed
   * without `keepClaims`, the whole payload. Unset in AUTH_MODE=none.
   */
  claims?: Readonly<Record<string, unknown>> | undefined;
}

/**
 * Port: turns a bearer token (or, in development, a claimed user id) into a
 * {@link Principal}. Implementations: firebase, jwt, none.
 */
export interface Authenticator {
  readonly mode: 'firebase' | 'jwt' | 'none';
  authenticate(credentials: { token?: string | undefined; userId?: string | undefined }): Promise<Principal>;
}

/**
 * Local error: authentication failed. Its message (the verifier's own words) is
 * logged, never sent to the peer; `code` is what the peer is told (the 4001 close
 * reason, `error.reason` of an HTTP 401), one of the protocol's auth failure reasons.
 */
export class AuthError extends Error {
  override readonly name = 'AuthError';
  /** Why, for the peer: short, stable, never secret. */
  readonly code: AuthFailureReason;
  /** Why, coarsely, for the `ws_auth_failed` log and its dashboards. */
  readonly reason: 'missing' | 'invalid' | 'expired';
  constructor(code: AuthFailureReason, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.reason = code === 'missing_token' ? 'missing' : code === 'token_expired' ? 'expired' : 'invalid';
  }
}
