import { createHmac, timingSafeEqual } from 'node:crypto';
import { AuthError, type Authenticator, type Principal } from './authenticator';

/** Options of {@link JwtAuthenticator}. */
export interface JwtAuthOptions {
  secret: string;
  /** Claim whose truthy value marks a service caller. */
  serviceRoleClaim: string;
  /** Tolerated clock skew for `exp` / `nbf`, in seconds. @default 30 */
  clockToleranceS?: number;
  now?: () => number;
}

function decodeJson(part: string): Record<string, unknown> {
  const value: unknown = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw new Error('not an object');
  return value as Record<string, unknown>;
}

/** Verifies HS256 JWTs signed with a shared secret; `sub` is the user id. */
export class JwtAuthenticator implements Authenticator {
  readonly mode = 'jwt' as const;
  readonly #secret: Buffer;
  readonly #options: Required<JwtAuthOptions>;

  constructor(options: JwtAuthOptions) {
    this.#secret = Buffer.from(options.secret, 'utf8');
    this.#options = { clockToleranceS: 30, now: Date.now, ...options };
  }

  async authenticate({ token }: { token?: string | undefined }): Promise<Principal> {
    if (!token) throw new AuthError('missing', 'no token');
    const parts = token.split('.');
    if (parts.length !== 3) throw new AuthError('invalid', 'token is not a JWT');
    const [h, p, s] = parts as [string, string, string];
    let header: Record<string, unknown>;
    let payload: Record<string, unknown>;
    try {
      header = decodeJson(h);
      payload = decodeJson(p);
    } catch (cause) {
      throw new AuthError('invalid', 'token is not a JWT', { cause });
    }
    // Only HS256: accepting the header's choice would allow `alg: none` forgeries.
    if (header.alg !== 'HS256') throw new AuthError('invalid', `unsupported alg ${String(header.alg)}`);
    const expected = createHmac('sha256', this.#secret).update(`${h}.${p}`).digest();
    const given = Buffer.from(s, 'base64url');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      throw new AuthError('invalid', 'bad signature');
    }
    const nowS = this.#options.now() / 1000;
    const tol = this.#options.clockToleranceS;
    if (typeof payload.exp === 'number' && nowS > payload.exp + tol) throw new AuthError('expired', 'token expired');
    if (typeof payload.nbf === 'number' && nowS < payload.nbf - tol)
      throw new AuthError('invalid', 'token not yet valid');
    if (typeof payload.sub !== 'string' || payload.sub === '') throw new AuthError('invalid', 'token has no sub');
    return { uid: payload.sub, service: Boolean(payload[this.#options.serviceRoleClaim]) };
  }
}

/** Signs an HS256 JWT. For tests, tools and app servers minting service tokens. */
export function signJwt(payload: Record<string, unknown>, secret: string): string {
  const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const head = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(payload)}`;
  return `${head}.${createHmac('sha256', secret).update(head).digest('base64url')}`;
}
