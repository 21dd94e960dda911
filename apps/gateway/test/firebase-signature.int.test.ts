import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { Agent } from 'node:https';
import { type AddressInfo, connect } from 'node:net';
import { deleteApp, type initializeApp as InitializeApp, initializeApp } from 'firebase-admin/app';
import { SignJWT } from 'jose';
import { AuthError } from '../src/auth/authenticator';
import { authenticatorContract } from '../src/auth/authenticator.contract';
import { FirebaseAuthenticator } from '../src/auth/firebase-authenticator';

// Firebase mode's signature check, for real: firebase-admin's own verifyIdToken (not the Auth
// emulator's path, which accepts unsigned tokens) on tokens of Google's shape (RS256, a `kid`,
// iss https://securetoken.google.com/<project>, aud <project>, auth_time, user_id), signed by
// keys made here. firebase-admin fetches the public keys from Google's fixed certificate URL;
// the app's `httpAgent` (a firebase-admin app option) sends that request to a local server
// instead, which publishes the keys. docs/configuration.md says what this does and does not cover.

const PROJECT = 'livebus-signed';
const CERT_PATH = '/robot/v1/metadata/x509/securetoken@system.gserviceaccount.com';
const nowS = () => Math.floor(Date.now() / 1000);

interface SigningKey {
  kid: string;
  privateKey: KeyObject;
  publicPem: string;
}

function signingKey(kid: string): SigningKey {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { kid, privateKey, publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString() };
}

const published = signingKey('google-key-1');
const unpublished = signingKey('google-key-1');
let server: Server;
/** The requests firebase-admin made for the keys, as host + path. */
const requests: string[] = [];
let app: ReturnType<typeof InitializeApp>;

beforeAll(async () => {
  // The Auth emulator's verifier would accept anything: make sure it is not the one used.
  delete process.env.FIREBASE_AUTH_EMULATOR_HOST;
  server = createServer((req, res) => {
    requests.push(`${req.headers.host}${req.url}`);
    if (req.url !== CERT_PATH) {
      res.writeHead(404).end();
      return;
    }
    // Google's response shape: key id -> PEM, cacheable for a while.
    res
      .writeHead(200, { 'content-type': 'application/json', 'cache-control': 'public, max-age=3600' })
      .end(JSON.stringify({ [published.kid]: published.publicPem }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  // Every connection firebase-admin opens through this agent goes to the local server, in clear:
  // the URL it asks for stays Google's, only where the bytes go changes.
  const httpAgent = new Agent({ keepAlive: false });
  (httpAgent as unknown as { createConnection: () => unknown }).createConnection = () => connect(port, '127.0.0.1');
  app = initializeApp({ projectId: PROJECT, httpAgent }, 'firebase-signature');
});

afterAll(async () => {
  await deleteApp(app);
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

/** An ID token as Firebase Auth issues it; `claims` and `header` override the defaults. */
function idToken(
  uid: string,
  options: { key?: SigningKey; claims?: Record<string, unknown>; header?: Record<string, unknown> } = {},
) {
  const key = options.key ?? published;
  const iat = nowS();
  return new SignJWT({
    iss: `https://securetoken.google.com/${PROJECT}`,
    aud: PROJECT,
    auth_time: iat,
    user_id: uid,
    sub: uid,
    iat,
    exp: iat + 3600,
    firebase: { identities: {}, sign_in_provider: 'custom' },
    ...options.claims,
  })
    .setProtectedHeader({ alg: 'RS256', kid: key.kid, typ: 'JWT', ...options.header })
    .sign(key.privateKey);
}

/** An unsigned token (alg none), what the Auth emulator issues. */
function unsigned(uid: string): string {
  const part = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const iat = nowS();
  return `${part({ alg: 'none', typ: 'JWT', kid: published.kid })}.${part({
    iss: `https://securetoken.google.com/${PROJECT}`,
    aud: PROJECT,
    auth_time: iat,
    user_id: uid,
    sub: uid,
    iat,
    exp: iat + 3600,
  })}.`;
}

authenticatorContract("firebase (Google's signed token shape, keys from a local certificate endpoint)", async () => ({
  auth: new FirebaseAuthenticator(app, 'livebus_service'),
  token: (uid, o = {}) => idToken(uid, o.service ? { claims: { livebus_service: true } } : {}),
  verifies: {
    expired: (uid) => idToken(uid, { claims: { iat: nowS() - 7200, auth_time: nowS() - 7200, exp: nowS() - 3600 } }),
    // Signed by a key Google never published, under the published key's id.
    untrusted: async (uid) => ({ token: await idToken(uid, { key: unpublished }), code: 'bad_signature' }),
  },
}));

describe('Firebase ID token signatures (firebase-admin verifyIdToken, not the emulator)', () => {
  const refusal = async (token: string) => {
    const auth = new FirebaseAuthenticator(app, 'livebus_service');
    const error = await auth.authenticate({ token }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AuthError);
    return (error as AuthError).code;
  };

  it('accepts a token signed by a published key, fetching the keys from Google’s certificate URL', async () => {
    const auth = new FirebaseAuthenticator(app, 'livebus_service');
    expect(await auth.authenticate({ token: await idToken('signed-user') })).toMatchObject({
      uid: 'signed-user',
      service: false,
    });
    expect(requests).toContain(`www.googleapis.com${CERT_PATH}`);
  });

  it('takes a service claim named like an Object.prototype member only from a token that carries it', async () => {
    for (const claim of ['constructor', 'toString', '__proto__']) {
      const auth = new FirebaseAuthenticator(app, claim);
      expect(await auth.authenticate({ token: await idToken('plain') })).toMatchObject({
        uid: 'plain',
        service: false,
      });
      const own = JSON.parse(`{${JSON.stringify(claim)}:true}`) as Record<string, unknown>;
      expect(await auth.authenticate({ token: await idToken('svc', { claims: own }) })).toMatchObject({
        uid: 'svc',
        service: true,
      });
    }
  });

  it('refuses a forged signature, an unknown key id, an unsigned token, another algorithm, a tampered payload', async () => {
    expect(await refusal(await idToken('forged', { key: unpublished }))).toBe('bad_signature');
    expect(await refusal(await idToken('unknown-kid', { header: { kid: 'not-published' } }))).toBe('unknown_key');
    // What the Auth emulator issues, and what the emulator-backed tests pass with.
    expect(await refusal(unsigned('unsigned'))).toBe('alg_not_allowed');
    const hs256 = await new SignJWT({ sub: 'hs', aud: PROJECT, iss: `https://securetoken.google.com/${PROJECT}` })
      .setProtectedHeader({ alg: 'HS256', kid: published.kid })
      .sign(new TextEncoder().encode(published.publicPem));
    expect(await refusal(hs256)).toBe('alg_not_allowed');
    // A valid token with its payload swapped for another user's: the signature no longer matches.
    const [header, , signature] = (await idToken('victim')).split('.');
    const [, payload] = (await idToken('attacker')).split('.');
    expect(await refusal(`${header}.${payload}.${signature}`)).toBe('bad_signature');
  });

  it('refuses a signed token of another project or issuer, and one without a subject', async () => {
    expect(await refusal(await idToken('other', { claims: { aud: 'another-project' } }))).toBe('wrong_audience');
    expect(await refusal(await idToken('other', { claims: { iss: 'https://securetoken.google.com/x' } }))).toBe(
      'wrong_issuer',
    );
    expect(await refusal(await idToken('', { claims: { sub: '' } }))).toBe('invalid_subject');
  });

  it('says verifier_unavailable when the keys cannot be fetched (Google unreachable), not that the token is bad', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const { port } = closed.address() as AddressInfo;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const httpAgent = new Agent({ keepAlive: false });
    (httpAgent as unknown as { createConnection: () => unknown }).createConnection = () => connect(port, '127.0.0.1');
    const offline = initializeApp({ projectId: PROJECT, httpAgent }, 'firebase-signature-offline');
    try {
      const auth = new FirebaseAuthenticator(offline, 'livebus_service');
      const error = await auth.authenticate({ token: await idToken('offline') }).catch((e: unknown) => e);
      // Before: invalid_token, as if the user's token were at fault.
      expect(error).toMatchObject({ name: 'AuthError', code: 'verifier_unavailable' });
    } finally {
      await deleteApp(offline);
    }
  });
});
