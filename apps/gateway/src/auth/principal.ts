import { isUserId, UserIdSchema } from '@livebus/protocol';
import { AuthError, type Principal } from './authenticator';

/**
 * Builds the {@link Principal} every authenticator returns, checking the user id
 * where it enters the gateway: a token may carry any `sub`, but registry keys,
 * metrics labels and frames all assume the protocol's `UserIdSchema` (1..128
 * characters), so an id outside it is refused here rather than deep inside.
 *
 * @param uid - the identity the credential names (a JWT `sub`, a Firebase uid, a claimed id)
 * @param service - whether the caller may act for any user
 * @param expiresAtMs - the credential's expiry in ms since the epoch (floored to a whole ms); undefined when it has none
 * @param claims - the verified token's claims (unset when there is no token)
 * @throws {@link AuthError} `invalid_subject` when `uid` is not a valid user id
 */
export function toPrincipal(
  uid: unknown,
  service: boolean,
  expiresAtMs?: number,
  claims?: Readonly<Record<string, unknown>>,
): Principal {
  // The same verdict as UserIdSchema's (hello-check.test.ts), without zod's objects per hello.
  if (isUserId(uid)) return new VerifiedPrincipal(uid, service, expiresAtMs, claims);
  const parsed = UserIdSchema.safeParse(uid);
  if (!parsed.success) {
    // The id itself stays out of the message: it is logged and may be huge or personal.
    const what = typeof uid === 'string' ? `${uid.length} characters` : typeof uid;
    throw new AuthError('invalid_subject', `user id must be a string of 1 to 128 characters (got ${what})`, {
      cause: parsed.error,
    });
  }
  return new VerifiedPrincipal(parsed.data, service, expiresAtMs, claims);
}

/**
 * The claim `name` of a verified token, only when the token carries it itself: a claims set is a
 * plain object, so `claims[name]` would also read what every object inherits (`constructor`,
 * `toString`, `__proto__`…), truthy for every token. Claim names come from configuration
 * (SERVICE_ROLE_CLAIM, LISTENERS_FILE `company.membership.claim`).
 */
export function ownClaim(claims: Readonly<Record<string, unknown>> | undefined, name: string): unknown {
  return claims !== undefined && Object.hasOwn(claims, name) ? claims[name] : undefined;
}

/**
 * Whether a token's service claim (SERVICE_ROLE_CLAIM) makes its caller a service: only the JSON
 * boolean `true`, or the exact string `"true"` (identity providers whose custom attributes are
 * strings only, such as Cognito's). Any other value is a user: `"false"`, `"0"`, `"no"`, `1`, `{}`
 * were all truthy, and made a service of a caller whose provider wrote the claim as a string.
 */
export function isServiceClaim(value: unknown): boolean {
  return value === true || value === 'true';
}

/**
 * The claims of a verified token that its principal keeps for the session's life: only those
 * named, when names are given (the gateway reads one claim after the hello, LISTENERS_FILE
 * `company.membership.claim`; a decoded Firebase ID token held whole is about 440 bytes per
 * session). Undefined when none of them is in the token; the whole payload without names.
 */
export function keptClaims(
  payload: Readonly<Record<string, unknown>>,
  names: readonly string[] | undefined,
): Readonly<Record<string, unknown>> | undefined {
  if (names === undefined) return payload;
  let kept: Record<string, unknown> | undefined;
  for (const name of names) {
    // A prototype-less object: a claim named `__proto__` is a claim like any other.
    if (!Object.hasOwn(payload, name)) continue;
    kept ??= Object.create(null) as Record<string, unknown>;
    kept[name] = payload[name];
  }
  return kept;
}

/**
 * An expiry as the frames carry it (`expires_at_ms`: a whole number, at most
 * `Number.MAX_SAFE_INTEGER`). A JWT's `exp` is a NumericDate and may have a fraction
 * (`1800000000.25`): its milliseconds were not whole, and the `token_expiring` or
 * `token_refreshed` notice that carried them failed to serialise (the session closed 1011).
 * Floored: the token is held a fraction of a millisecond less, never more. An `exp` past
 * year 287 000 (or `1e400`, which JSON reads as Infinity) is held at the largest whole number.
 */
function wholeMs(ms: number): number {
  return Math.min(Math.floor(ms), Number.MAX_SAFE_INTEGER);
}

/**
 * A principal as {@link toPrincipal} makes it. The claims are a private field behind a
 * getter: not enumerable, so a principal compared or logged whole does not carry the
 * token's payload along. (They were a non-enumerable property added with
 * `defineProperty`, which gave every session's principal an extra property array.)
 */
class VerifiedPrincipal implements Principal {
  readonly uid: string;
  readonly service: boolean;
  /** Absent (not undefined) when the credential does not expire. */
  declare readonly expiresAtMs?: number;
  readonly #claims: Readonly<Record<string, unknown>> | undefined;

  constructor(uid: string, service: boolean, expiresAtMs?: number, claims?: Readonly<Record<string, unknown>>) {
    this.uid = uid;
    this.service = service;
    if (expiresAtMs !== undefined) (this as { expiresAtMs?: number }).expiresAtMs = wholeMs(expiresAtMs);
    this.#claims = claims;
  }

  get claims(): Readonly<Record<string, unknown>> | undefined {
    return this.#claims;
  }
}
