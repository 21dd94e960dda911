import { createHmac, createSecretKey, type KeyObject } from 'node:crypto';
import type { AuthFailureReason } from '@livebus/protocol';
import { errors, type JWTPayload, type JWTVerifyGetKey, jwtVerify } from 'jose';
import { DEFAULT_TOKEN_CLOCK_TOLERANCE_MS } from '../core/token-schedule';
import { AuthError, type Authenticator, type Principal } from './authenticator';
import { type Hs256Checks, verifyHs256 } from './hs256';
import { isServiceClaim, keptClaims, ownClaim, toPrincipal } from './principal';
import { JwksUnavailable, RemoteKeySet } from './remote-key-set';

/**
 * Options of {@link JwtAuthenticator}. At least one of `secret` and `jwksUrl` is
 * required; each one enables only its own algorithms.
 */
export interface JwtAuthOptions {
  /** Shared secret: enables HS256. @default undefined (HS256 tokens are refused) */
  secret?: string | undefined;
  /**
   * URL of the identity provider's JSON Web Key Set: enables RS256 and ES256.
   * Keys are kept and fetched again when a token names an unknown `kid` (at most every
   * `jwksCooldownMs`) and when they are `jwksMaxAgeMs` old; the keys held keep verifying
   * while the provider cannot be reached.
   * @default undefined (RS256 and ES256 tokens are refused)
   */
  jwksUrl?: string | URL | undefined;
  /** Required `iss` of every token. @default undefined (not checked) */
  issuer?: string | undefined;
  /** Required `aud` of every token (one of them, if `aud` is a list). @default undefined (not checked) */
  audience?: string | undefined;
  /**
   * Refuse a token without `exp` (`invalid_token`): one that leaks would work for ever. The gateway
   * passes JWT_REQUIRE_EXP, on by default with NODE_ENV=production.
   * @default false (a token without `exp` is accepted and never expires)
   */
  requireExp?: boolean | undefined;
  /** Claim that marks a service caller when it is `true` (or the string `"true"`): {@link isServiceClaim}. */
  serviceRoleClaim: string;
  /**
   * Clock skew tolerated on `exp` and `nbf`: a token is accepted until `exp` plus this.
   * The gateway passes TOKEN_CLOCK_TOLERANCE_MS, the tolerance of every way in.
   * @default 5_000
   */
  clockToleranceMs?: number;
  /**
   * Least time between two JWKS fetches. Bounds how often tokens with made-up
   * `kid`s can make us call the identity provider; tests set it to 0.
   * @default 30_000
   */
  jwksCooldownMs?: number;
  /** Time allowed for one JWKS fetch, the body included. @default 5_000 */
  jwksTimeoutMs?: number;
  /** Age after which the keys are fetched again (in the background: the held ones verify meanwhile). @default 600_000 */
  jwksMaxAgeMs?: number;
  /** Told when that background fetch fails (the keys held keep verifying): for a log line. */
  onJwksRefreshError?: (message: string) => void;
  /** Clock, in ms since the epoch. @default Date.now */
  now?: () => number;
  /**
   * Claims a session's principal keeps after verification ({@link Principal.claims}); the rest
   * of the payload is dropped. The gateway passes the claims its configuration reads (the
   * company membership claim). @default undefined (the whole payload is kept)
   */
  keepClaims?: readonly string[] | undefined;
}

/** Algorithms each kind of key may verify. Never `none`, never the token's own choice. */
const HMAC_ALGS = ['HS256'];
const JWKS_ALGS = ['RS256', 'ES256'];

/**
 * Verifies JWTs: HS256 against a shared secret (with `node:crypto`, hs256.ts, or `jose`
 * for what that does not decide alone) and/or RS256 / ES256 against an identity
 * provider's JWKS (`jose`). `sub` is the user id; `exp` becomes
 * {@link Principal.expiresAtMs} (required with `requireExp`).
 */
export class JwtAuthenticator implements Authenticator {
  readonly mode = 'jwt' as const;
  readonly #options: JwtAuthOptions & { clockToleranceMs: number; now: () => number };
  readonly #algorithms: string[];
  readonly #key: JWTVerifyGetKey;
  /** The secret as a key object, made once (jose made one per token from the bytes). */
  readonly #hmacKey: KeyObject | undefined;

  /** @throws TypeError when neither `secret` nor `jwksUrl` is given. */
  constructor(options: JwtAuthOptions) {
    const { secret, jwksUrl } = options;
    if (!secret && !jwksUrl) throw new TypeError('JwtAuthenticator needs a secret or a jwksUrl');
    this.#options = {
      ...options,
      clockToleranceMs: options.clockToleranceMs ?? DEFAULT_TOKEN_CLOCK_TOLERANCE_MS,
      now: options.now ?? Date.now,
    };
    const hmacKey = secret ? createSecretKey(Buffer.from(secret, 'utf8')) : undefined;
    this.#hmacKey = hmacKey;
    // Fetches nothing until the first token needs a key.
    const jwks = jwksUrl
      ? new RemoteKeySet(new URL(jwksUrl), {
          cooldownMs: options.jwksCooldownMs ?? 30_000,
          timeoutMs: options.jwksTimeoutMs ?? 5_000,
          maxAgeMs: options.jwksMaxAgeMs ?? 600_000,
          now: this.#options.now,
          ...(options.onJwksRefreshError ? { onRefreshError: options.onJwksRefreshError } : {}),
        }).getKey
      : undefined;
    this.#algorithms = [...(hmacKey ? HMAC_ALGS : []), ...(jwks ? JWKS_ALGS : [])];
    // jose checks the header's alg against #algorithms before calling this, so the
    // secret only ever verifies HS256 and the JWKS only RS256 / ES256.
    this.#key = async (header, token) => {
      if (header.alg && HMAC_ALGS.includes(header.alg) && hmacKey) return hmacKey;
      if (jwks) {
        try {
          return await jwks(header, token);
        } catch (cause) {
          if (
            cause instanceof errors.JWKSNoMatchingKey ||
            cause instanceof errors.JWKSMultipleMatchingKeys ||
            cause instanceof JwksUnavailable
          )
            throw cause;
          throw new JwksUnavailable(`JWKS unavailable: ${cause instanceof Error ? cause.message : String(cause)}`, {
            cause,
          });
        }
      }
      throw new errors.JOSEAlgNotAllowed(`no key for alg ${String(header.alg)}`);
    };
  }

  /** What {@link verifyHs256} checks besides the signature: the options jose is given below. */
  #hs256Checks(): Hs256Checks {
    const { issuer, audience, clockToleranceMs, now } = this.#options;
    return { issuer, audience, clockToleranceS: clockToleranceMs / 1000, nowMs: now() };
  }

  async authenticate({ token }: { token?: string | undefined }): Promise<Principal> {
    if (!token) throw new AuthError('missing_token', 'no token');
    let payload: JWTPayload;
    try {
      // HS256 tokens, the common case, are checked here without jose's async path (hs256.ts);
      // whatever it does not decide alone (other algs, crit, malformed) goes to jose.
      const hs256 = this.#hmacKey ? verifyHs256(token, this.#hmacKey, this.#hs256Checks()) : undefined;
      payload =
        hs256 ??
        (
          await jwtVerify(token, this.#key, {
            algorithms: this.#algorithms,
            issuer: this.#options.issuer,
            audience: this.#options.audience,
            // jose counts in seconds; fractions are fine.
            clockTolerance: this.#options.clockToleranceMs / 1000,
            currentDate: new Date(this.#options.now()),
            requiredClaims: ['sub'],
          })
        ).payload;
    } catch (cause) {
      throw toAuthError(cause);
    }
    // After the signature and the other claims (both paths checked those alike): only a
    // token that would otherwise be accepted is refused for this.
    if (payload.exp === undefined && this.#options.requireExp) {
      throw new AuthError('invalid_token', 'token claim exp refused: missing (JWT_REQUIRE_EXP: tokens must expire)');
    }
    const expiresAtMs = typeof payload.exp === 'number' ? payload.exp * 1000 : undefined;
    const { serviceRoleClaim, keepClaims } = this.#options;
    return toPrincipal(
      payload.sub,
      isServiceClaim(ownClaim(payload, serviceRoleClaim)),
      expiresAtMs,
      keptClaims(payload, keepClaims),
    );
  }
}

/** The refused claim of a `JWTClaimValidationFailed`, as the reason the peer is told. */
const CLAIM_REASONS: Record<string, AuthFailureReason> = {
  aud: 'wrong_audience',
  iss: 'wrong_issuer',
  sub: 'invalid_subject',
  nbf: 'token_not_yet_valid',
};

/** Maps a jose failure to the port's reasons; the message says which check failed, for the log. */
function toAuthError(cause: unknown): AuthError {
  if (cause instanceof errors.JWTExpired) return new AuthError('token_expired', 'token expired', { cause });
  if (cause instanceof errors.JWTClaimValidationFailed) {
    return new AuthError(
      CLAIM_REASONS[cause.claim] ?? 'invalid_token',
      `token claim ${cause.claim} refused: ${cause.reason}`,
      {
        cause,
      },
    );
  }
  if (cause instanceof errors.JOSEAlgNotAllowed)
    return new AuthError('alg_not_allowed', 'token alg not allowed', { cause });
  if (cause instanceof errors.JWSSignatureVerificationFailed)
    return new AuthError('bad_signature', 'bad signature', { cause });
  if (cause instanceof errors.JWKSNoMatchingKey || cause instanceof errors.JWKSMultipleMatchingKeys) {
    return new AuthError('unknown_key', 'no single JWKS key matches the token', { cause });
  }
  // The identity provider being unreachable is not the client's fault: the token could not be
  // verified, so it is refused, and the reason says so.
  if (cause instanceof JwksUnavailable) return new AuthError('verifier_unavailable', cause.message, { cause });
  if (cause instanceof errors.JWSInvalid || cause instanceof errors.JWTInvalid) {
    return new AuthError('malformed_token', `token is not a valid JWT (${cause.code})`, { cause });
  }
  const code = cause instanceof errors.JOSEError ? cause.code : 'unknown error';
  return new AuthError('invalid_token', `token is not a valid JWT (${code})`, { cause });
}

/** Options of {@link signJwt}. */
export interface SignJwtOptions {
  /**
   * Lifetime of the token: `exp` is now plus this, in whole seconds, unless the payload carries
   * its own `exp`. `false`: no `exp` (a token that never expires, refused with JWT_REQUIRE_EXP,
   * the default in production). @default 3600 (1 h)
   */
  expiresInS?: number | false;
}

/** {@link signJwt}'s default lifetime: a leaked token works an hour, not for ever. */
export const SIGN_JWT_DEFAULT_EXPIRES_IN_S = 3600;

/**
 * Signs an HS256 JWT. For tests, tools and app servers minting service tokens. Adds `exp` (an hour
 * from now by default, `options.expiresInS`) when the payload has none: mint a fresh token per call
 * or per hour rather than one kept for ever.
 */
export function signJwt(payload: Record<string, unknown>, secret: string, options: SignJwtOptions = {}): string {
  const { expiresInS = SIGN_JWT_DEFAULT_EXPIRES_IN_S } = options;
  if (expiresInS !== false && !(Number.isSafeInteger(expiresInS) && expiresInS > 0)) {
    throw new TypeError(`signJwt: expiresInS must be a whole number of seconds above 0, or false; got ${expiresInS}`);
  }
  const claims =
    payload.exp !== undefined || expiresInS === false
      ? payload
      : { ...payload, exp: Math.floor(Date.now() / 1000) + expiresInS };
  const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const head = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(claims)}`;
  return `${head}.${createHmac('sha256', secret).update(head).digest('base64url')}`;
}
