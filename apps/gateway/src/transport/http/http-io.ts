import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { parseJsonText, protocolDefaults } from '@livebus/protocol';
import { AuthError, type Principal } from '../../auth/authenticator';
import type { HttpDeps } from './http-deps';

/** An answer a route throws: status and JSON body, sent as is by the handler. */
export class HttpError extends Error {
  override readonly name = 'HttpError';
  readonly status: number;
  readonly body: Record<string, unknown>;
  constructor(status: number, code: string, message: string, extra: Record<string, unknown> = {}) {
    super(message);
    this.status = status;
    this.body = { error: { code, message, ...extra } };
  }
}

/** Sends a JSON answer that no cache keeps. */
export function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(text);
}

/** The bearer token of the Authorization header, if any. */
export function bearer(req: IncomingMessage): string | undefined {
  const header = req.headers.authorization;
  return header?.startsWith('Bearer ') ? header.slice(7).trim() || undefined : undefined;
}

/** Compares secrets in constant time, so that timing tells nothing about the admin token. */
export function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** How long the rest of a body refused for its size is read and dropped before the connection is cut. */
const LINGER_MS = 10_000;

/** Reads a JSON body of at most `maxBytes`; too large, too deep or not JSON is a 4xx {@link HttpError}. */
export async function readJson(req: IncomingMessage, maxBytes: number): Promise<unknown> {
  const body = await new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let refused = false;
    req.on('data', (chunk: Buffer) => {
      if (refused) return;
      size += chunk.length;
      if (size <= maxBytes) {
        chunks.push(chunk);
        return;
      }
      // Refused, and the rest of the body read and dropped by Node once the 413 is sent (not the
      // socket closed under a client still sending it: its TCP reset would lose the answer).
      refused = true;
      chunks.length = 0;
      // ...for a while: a client that never stops sending is cut off (as nginx's lingering close).
      const cutOff = setTimeout(() => req.destroy(), LINGER_MS);
      cutOff.unref();
      req.once('close', () => clearTimeout(cutOff));
      reject(new HttpError(413, 'too_large', `body larger than ${maxBytes} bytes`));
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
  // Depth is checked before JSON.parse and the schemas see the value: hostile nesting is a 400, never a crash.
  const parsed = parseJsonText(body.toString('utf8'));
  if (parsed.ok) return parsed.value;
  if (parsed.error.kind === 'too_deep') {
    throw new HttpError(400, 'too_deep', `body nested deeper than ${protocolDefaults.maxJsonDepth} levels`);
  }
  throw new HttpError(400, 'bad_json', 'body is not valid JSON');
}

/** Who may call what: the checks the route groups share. */
export interface RequestGuards {
  /** Whether the request carries the ADMIN_TOKEN (always, when none is set: never in production). */
  isAdmin(req: IncomingMessage): boolean;
  /** Admin endpoints: throws a 401 without the ADMIN_TOKEN when one is set (it must be in production). */
  requireAdmin(req: IncomingMessage): void;
  /** The caller's principal from its bearer token; a 401 with the machine-readable reason otherwise. */
  principalOf(req: IncomingMessage): Promise<Principal>;
}

/** The {@link RequestGuards} of one gateway. */
export function requestGuards(deps: Pick<HttpDeps, 'config' | 'auth' | 'logger'>): RequestGuards {
  const { adminToken } = deps.config;
  const isAdmin = (req: IncomingMessage) => {
    if (!adminToken) return true;
    const token = bearer(req);
    return Boolean(token && safeEqual(token, adminToken));
  };
  return {
    isAdmin,
    requireAdmin(req) {
      if (!isAdmin(req)) throw new HttpError(401, 'unauthenticated', 'admin token required');
    },
    async principalOf(req) {
      const token = bearer(req);
      if (!token) throw new HttpError(401, 'unauthenticated', 'bearer token required', { reason: 'missing_token' });
      try {
        return await deps.auth.authenticate({ token });
      } catch (error) {
        if (error instanceof AuthError) {
          deps.logger.warn('http_auth_failed', { reason: error.reason, code: error.code, error: error.message });
          // The same machine-readable reason as a 4001 close.
          throw new HttpError(401, 'unauthenticated', 'invalid token', { reason: error.code });
        }
        throw error;
      }
    },
  };
}
