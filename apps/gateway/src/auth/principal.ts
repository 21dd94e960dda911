import { UserIdSchema } from '@livebus/protocol';
import { AuthError, type Principal } from './authenticator';

/**
 * Builds the {@link Principal} every authenticator returns, checking the user id
 * where it enters the gateway: a token may carry any `sub`, but registry keys,
 * metrics labels and frames all assume the protocol's `UserIdSchema` (1..128
 * characters), so an id outside it is refused here rather than deep inside.
 *
 * @param uid - the identity the credential names (a JWT `sub`, a Firebase uid, a claimed id)
 * @param service - whether the caller may act for any user
 * @param expiresAtMs - the credential's expiry in ms since the epoch; undefined when it has none
 * @param claims - the verified token's claims (unset when there is no token)
 * @throws {@link AuthError} `invalid_subject` when `uid` is not a valid user id
 */
export function toPrincipal(
  uid: unknown,
  service: boolean,
  expiresAtMs?: number,
  claims?: Readonly<Record<string, unknown>>,
): Principal {
  const parsed = UserIdSchema.safeParse(uid);
  if (!parsed.success) {
    // The id itself stays out of the message: it is logged and may be huge or personal.
    const what = typeof uid === 'string' ? `${uid.length} characters` : typeof uid;
    throw new AuthError('invalid_subject', `user id must be a string of 1 to 128 characters (got ${what})`, {
      cause: parsed.error,
    });
  }
  const principal: Principal =
    expiresAtMs === undefined ? { uid: parsed.data, service } : { uid: parsed.data, service, expiresAtMs };
  // Not enumerable: a principal compared or logged whole does not carry the token's payload along.
  if (claims) Object.defineProperty(principal, 'claims', { value: claims, enumerable: false });
  return principal;
}
