import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type AuthEmulatorStub, startAuthEmulatorStub, unsignedIdToken } from '@livebus/test-support';
import { deleteApp, type initializeApp as InitializeApp, initializeApp } from 'firebase-admin/app';
import { exportJWK, generateKeyPair, type JWK, type KeyLike, SignJWT } from 'jose';
import { authenticatorContract } from '../src/auth/authenticator.contract';
import { FirebaseAuthenticator } from '../src/auth/firebase-authenticator';
import { JwtAuthenticator, signJwt } from '../src/auth/jwt-authenticator';
import { NoneAuthenticator } from '../src/auth/none-authenticator';

const nowS = () => Math.floor(Date.now() / 1000);

authenticatorContract(
  'none',
  async () => ({
    auth: new NoneAuthenticator(),
    token: async (uid, o = {}) => (o.service ? `service:${uid}` : uid),
  }),
  { verifiesTokens: false },
);

const SECRET = 'contract-test-secret-that-is-long-enough';
authenticatorContract('jwt with a local key (HS256)', async () => ({
  auth: new JwtAuthenticator({ secret: SECRET, serviceRoleClaim: 'svc' }),
  token: async (uid, o = {}) => signJwt({ sub: uid, exp: nowS() + 600, ...(o.service ? { svc: true } : {}) }, SECRET),
  verifies: {
    expired: async (uid) => signJwt({ sub: uid, exp: nowS() - 3600 }, SECRET),
    untrusted: async (uid) => ({
      token: signJwt({ sub: uid, exp: nowS() + 600 }, 'another-secret-that-is-long-enough-too'),
      code: 'bad_signature',
    }),
  },
}));

/** A JWKS endpoint on 127.0.0.1 publishing the public half of one key. */
const jwks = (() => {
  let server: Server;
  let url = '';
  let privateKey: KeyLike;
  let jwk: JWK;
  beforeAll(async () => {
    const pair = await generateKeyPair('ES256');
    privateKey = pair.privateKey;
    jwk = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
    server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [jwk] }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/.well-known/jwks.json`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  const sign = (claims: Record<string, unknown>, key = privateKey) =>
    new SignJWT({ iat: nowS(), exp: nowS() + 600, ...claims })
      .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
      .sign(key);
  return { url: () => url, sign };
})();
authenticatorContract('jwt with a JWKS endpoint (ES256)', async () => ({
  auth: new JwtAuthenticator({ jwksUrl: jwks.url(), serviceRoleClaim: 'svc' }),
  token: (uid, o = {}) => jwks.sign({ sub: uid, ...(o.service ? { svc: true } : {}) }),
  verifies: {
    expired: (uid) => jwks.sign({ sub: uid, iat: nowS() - 7200, exp: nowS() - 3600 }),
    // Signed by a key the identity provider never published, under the published key's id.
    untrusted: async (uid) => ({
      token: await jwks.sign({ sub: uid }, (await generateKeyPair('ES256')).privateKey),
      code: 'bad_signature',
    }),
  },
}));

const firebase = (() => {
  const project = 'livebus-contract';
  let stub: AuthEmulatorStub;
  let app: ReturnType<typeof InitializeApp>;
  beforeAll(async () => {
    stub = await startAuthEmulatorStub();
    process.env.FIREBASE_AUTH_EMULATOR_HOST = stub.host;
    app = initializeApp({ projectId: project }, 'authenticator-contract');
  });
  afterAll(async () => {
    await deleteApp(app);
    await stub.close();
    delete process.env.FIREBASE_AUTH_EMULATOR_HOST;
  });
  /** An ID token of a user the emulator knows. */
  const idToken = (uid: string, claims: Record<string, unknown> = {}, expiresInS = 3600, projectId = project) => {
    stub.users.set(uid, { localId: uid });
    return unsignedIdToken(projectId, uid, claims, expiresInS);
  };
  return { app: () => app, idToken };
})();
authenticatorContract('firebase (Auth emulator stub)', async () => ({
  auth: new FirebaseAuthenticator(firebase.app(), 'livebus_service'),
  token: async (uid, o = {}) => firebase.idToken(uid, o.service ? { livebus_service: true } : {}),
  verifies: {
    expired: async (uid) => firebase.idToken(uid, { iat: nowS() - 7200, auth_time: nowS() - 7200 }, -3600),
    untrusted: async (uid) => ({ token: firebase.idToken(uid, {}, 3600, 'another-project'), code: 'wrong_audience' }),
  },
}));
