/** Who is calling: the user id and whether the caller may act for any user. */
export interface Principal {
  /** The user id, already checked against the protocol's `UserIdSchema` (1..128 characters). */
  uid: string;
  /** A service caller (an app server) may act on any `user_id`. */
  service: boolean;
  /**
   * When the credential stops being valid, in ms since the epoch (the token's `exp`).
   * Undefined when the credential does not expire (AUTH_MODE=none, a JWT without `exp`).
   */
  expiresAtMs?: number | undefined;
}

/**
 * Port: turns a bearer token (or, in development, a claimed user id) into a
 * {@link Principal}. Implementations: firebase, jwt, none.
 */
export interface Authenticator {
  readonly mode: 'firebase' | 'jwt' | 'none';
  authenticate(credentials: { token?: string | undefined; userId?: string | undefined }): Promise<Principal>;
}

/** Local error: authentication failed. Its message is logged, never sent to the peer. */
export class AuthError extends Error {
  override readonly name = 'AuthError';
  readonly reason: 'missing' | 'invalid' | 'expired';
  constructor(reason: 'missing' | 'invalid' | 'expired', message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.reason = reason;
  }
}
