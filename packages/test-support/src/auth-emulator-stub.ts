import { createServer, type Server } from 'node:http';

/** A user the stub knows, as the Auth emulator's accounts:lookup returns it. */
export interface StubUser {
  localId: string;
  email?: string;
  disabled?: boolean;
  customAttributes?: string;
}

/** The one call firebase-admin makes to the Auth emulator when verifying an ID token. */
export interface AuthEmulatorStub {
  /** `127.0.0.1:PORT`, the value for FIREBASE_AUTH_EMULATOR_HOST. */
  readonly host: string;
  users: Map<string, StubUser>;
  lookups: number;
  close(): Promise<void>;
}

/**
 * A tiny HTTP server answering `POST .../accounts:lookup` like the Firebase Auth
 * emulator does. With FIREBASE_AUTH_EMULATOR_HOST set, firebase-admin accepts
 * unsigned (`alg: none`) ID tokens and only asks this endpoint whether the user exists.
 */
export async function startAuthEmulatorStub(): Promise<AuthEmulatorStub> {
  const users = new Map<string, StubUser>();
  const stub = { users, lookups: 0 } as AuthEmulatorStub;
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => {
      body += c;
    });
    req.on('end', () => {
      if (req.method !== 'POST' || !req.url?.includes('accounts:lookup')) {
        res.writeHead(404).end();
        return;
      }
      stub.lookups++;
      const ids: string[] = (JSON.parse(body || '{}') as { localId?: string[] }).localId ?? [];
      const found = ids.map((id) => users.get(id)).filter((u): u is StubUser => Boolean(u));
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(found.length ? { kind: 'identitytoolkit#GetAccountInfoResponse', users: found } : {}));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (!address || typeof address !== 'object') throw new Error('no address');
  return Object.assign(stub, {
    host: `127.0.0.1:${address.port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  });
}

/** Builds an unsigned Firebase ID token that firebase-admin accepts when the Auth emulator is configured. */
export function unsignedIdToken(
  projectId: string,
  uid: string,
  claims: Record<string, unknown> = {},
  expiresInS = 3600,
): string {
  const now = Math.floor(Date.now() / 1000);
  const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const payload = {
    iss: `https://securetoken.google.com/${projectId}`,
    aud: projectId,
    auth_time: now - 10,
    user_id: uid,
    sub: uid,
    iat: now - 10,
    exp: now + expiresInS,
    firebase: { identities: {}, sign_in_provider: 'custom' },
    ...claims,
  };
  return `${b64({ alg: 'none', typ: 'JWT' })}.${b64(payload)}.`;
}
