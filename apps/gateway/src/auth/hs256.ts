import { createHmac, type KeyObject, timingSafeEqual } from 'node:crypto';
import { errors, type JWTPayload } from 'jose';

/** What {@link verifyHs256} checks besides the signature, as `jwtVerify`'s options said it. */
export interface Hs256Checks {
  /** Required `iss`; undefined: not checked. */
  issuer: string | undefined;
  /** Required `aud` (one of them, when `aud` is a list); undefined: not checked. */
  audience: string | undefined;
  /** Clock skew tolerated on `exp` and `nbf`, in seconds (fractions allowed). */
  clockToleranceS: number;
  /** Now, in ms since the epoch. */
  nowMs: number;
}

const decoder = new TextDecoder();

/** A JSON object as jose's `isObject` sees one (what `JSON.parse` gives: not null, not an array). */
function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function parseSegment(segment: string): unknown {
  try {
    return JSON.parse(decoder.decode(Buffer.from(segment, 'base64url')));
  } catch {
    return undefined;
  }
}

/**
 * Verifies a compact HS256 JWT the way jose's `jwtVerify` does with `algorithms: ['HS256']`
 * and `requiredClaims: ['sub']`, synchronously with `node:crypto`: jose's path is six
 * `await`s, a key object made per call and three copies of the token, about 30 µs of
 * CPU per token against 5 here (a reconnect storm verifies one per hello).
 *
 * Only the ordinary case is decided here: three segments, a header that is a JSON
 * object with `alg: "HS256"` and neither `crit` nor `b64`. Anything else returns
 * undefined and is left to jose, which then refuses it (or verifies it against the
 * JWKS) exactly as before. A token decided here is refused with the error jose throws
 * for the same check, in jose's order: signature, then the claims set (a JSON object),
 * then the presence of `iss`, `aud`, `sub`, then `iss`, `aud`, `iat` (a number),
 * `nbf` and `exp` with the tolerance.
 *
 * The equivalence is with jose 5.10 as installed, checked by hs256.test.ts (every verdict
 * compared with jose's). apps/gateway/package.json pins jose to `~5.10.0` for that reason:
 * another minor or major may change what jose accepts (its order of checks, its base64url
 * decoding, how it reads `crit`, `b64` and the claims) and this would silently go on doing
 * what the old one did. hs256.test.ts fails loudly when the installed jose is not 5.10.x:
 * bumping jose means reviewing this function against the new jwtVerify, then the test.
 *
 * @throws jose's `JWSSignatureVerificationFailed`, `JWTInvalid`, `JWTClaimValidationFailed`, `JWTExpired`
 */
export function verifyHs256(token: string, key: KeyObject, checks: Hs256Checks): JWTPayload | undefined {
  const first = token.indexOf('.');
  const second = first < 0 ? -1 : token.indexOf('.', first + 1);
  if (second < 0 || token.indexOf('.', second + 1) >= 0) return undefined;
  const header = parseSegment(token.slice(0, first));
  if (!isPlainObject(header) || header.alg !== 'HS256' || 'crit' in header || 'b64' in header) return undefined;

  const signature = Buffer.from(token.slice(second + 1), 'base64url');
  const expected = createHmac('sha256', key).update(token.slice(0, second)).digest();
  if (signature.length !== expected.length || !timingSafeEqual(signature, expected)) {
    throw new errors.JWSSignatureVerificationFailed();
  }

  const payload = parseSegment(token.slice(first + 1, second));
  if (!isPlainObject(payload)) throw new errors.JWTInvalid('JWT Claims Set must be a top-level JSON object');
  const { issuer, audience, clockToleranceS: tolerance } = checks;
  // jose checks presence in this order: iss, aud, then the required sub.
  const required = [...(issuer !== undefined ? ['iss'] : []), ...(audience !== undefined ? ['aud'] : []), 'sub'];
  for (const claim of required) {
    if (!(claim in payload)) {
      throw new errors.JWTClaimValidationFailed(`missing required "${claim}" claim`, payload, claim, 'missing');
    }
  }
  if (issuer && payload.iss !== issuer) {
    throw new errors.JWTClaimValidationFailed('unexpected "iss" claim value', payload, 'iss', 'check_failed');
  }
  if (audience && !(payload.aud === audience || (Array.isArray(payload.aud) && payload.aud.includes(audience)))) {
    throw new errors.JWTClaimValidationFailed('unexpected "aud" claim value', payload, 'aud', 'check_failed');
  }
  const now = Math.floor(checks.nowMs / 1000);
  if (payload.iat !== undefined && typeof payload.iat !== 'number') {
    throw new errors.JWTClaimValidationFailed('"iat" claim must be a number', payload, 'iat', 'invalid');
  }
  if (payload.nbf !== undefined) {
    if (typeof payload.nbf !== 'number') {
      throw new errors.JWTClaimValidationFailed('"nbf" claim must be a number', payload, 'nbf', 'invalid');
    }
    if (payload.nbf > now + tolerance) {
      throw new errors.JWTClaimValidationFailed('"nbf" claim timestamp check failed', payload, 'nbf', 'check_failed');
    }
  }
  if (payload.exp !== undefined) {
    if (typeof payload.exp !== 'number') {
      throw new errors.JWTClaimValidationFailed('"exp" claim must be a number', payload, 'exp', 'invalid');
    }
    if (payload.exp <= now - tolerance) {
      throw new errors.JWTExpired('"exp" claim timestamp check failed', payload, 'exp', 'check_failed');
    }
  }
  return payload as JWTPayload;
}
