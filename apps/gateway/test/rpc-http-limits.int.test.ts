import { JwtAuthenticator, signJwt } from '../src/auth/jwt-authenticator';
import { startGateway, type TestGateway } from './helpers';

// POST /rpc has no connection to hold a token bucket: a user's calls over HTTP are limited per
// user id instead, at the WebSocket's rate and burst, so that one user cannot call at network
// speed (growing what its calls store, or costing the fleet's Redis and Firestore). A service,
// an app server calling for many users, is not limited.

const SECRET = 'a-test-secret-that-is-long-enough-1234';
const token = (sub: string, extra: Record<string, unknown> = {}) =>
  signJwt({ sub, exp: Math.floor(Date.now() / 1000) + 600, ...extra }, SECRET);

let t: TestGateway;
beforeAll(async () => {
  // One call a second on average, three at once: ten calls at once leave most refused.
  t = await startGateway(
    { authMode: 'jwt', jwtSecret: SECRET, rateLimitFramesPerS: 1, rateLimitBurst: 3 },
    { auth: new JwtAuthenticator({ secret: SECRET, serviceRoleClaim: 'livebus_service' }) },
  );
});
afterAll(() => t.close());

/** One call; with the answer's Retry-After, which httpJson does not keep. */
async function call(bearer: string, uid: string) {
  const res = await fetch(`${t.http}/rpc`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${bearer}` },
    body: JSON.stringify({ method: 'REGISTRY.get_sessions', args: [uid] }),
  });
  return { status: res.status, retryAfter: res.headers.get('retry-after'), body: await res.json() };
}

it('answers a user calling faster than the limit 429 rate_limited with Retry-After, and not another user', async () => {
  const flood = await Promise.all(Array.from({ length: 10 }, () => call(token('busy'), 'busy')));
  const refused = flood.filter((r) => r.status === 429);
  // The burst went through; each second of the run could let one more through, no more.
  expect(flood.filter((r) => r.status === 200).length).toBeGreaterThanOrEqual(3);
  expect(refused.length).toBeGreaterThan(0);
  expect(refused[0]?.body).toEqual({ error: { code: 'rate_limited', message: 'too many calls; slow down' } });
  expect(refused[0]?.retryAfter).toBe('1');
  expect((await call(token('calm'), 'calm')).status).toBe(200);
  // Counted by outcome; the method is not known, as the body of a refused call is not read.
  const metrics = await fetch(`${t.http}/metrics`).then((r) => r.text());
  const counted = metrics.match(/livebus_rpc_calls_total\{method="unknown",outcome="rate_limited"\} (\d+)/);
  expect(Number(counted?.[1])).toBe(refused.length);
});

it('does not limit a service calling for many users', async () => {
  const service = token('app-server', { livebus_service: true });
  const calls = await Promise.all(Array.from({ length: 10 }, (_, i) => call(service, `user-${i}`)));
  expect(calls.map((r) => r.status)).toEqual(Array(10).fill(200));
});
