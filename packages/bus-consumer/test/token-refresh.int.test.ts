// Token refresh against the real gateway: tokens that last a few seconds, refreshed in-band.
// Needs the gateway side of "token refresh" (token_expiring notices, auth frames, close 4011).
import { signJwt } from '@livebus/gateway';
import { CloseCode } from '@livebus/protocol';
import { waitFor } from '@livebus/test-support';
import { BusConsumer, FatalCloseError } from '../src/index';
import { type GatewayHandle, numbered, startGateway } from './helpers';

const SECRET = 'client-refresh-secret-long-enough-0123456789';
const LEAD_MS = 1_500;
const GRACE_MS = 500;
const LIFETIME_S = 3;
const fast = { minReconnectDelayMs: 20, maxReconnectDelayMs: 100 };
/** A token for `sub` that expires LIFETIME_S seconds from now (`exp` has whole seconds). */
const tokenFor = (sub: string, lifetimeS = LIFETIME_S) =>
  signJwt({ sub, exp: Math.floor(Date.now() / 1000) + lifetimeS }, SECRET);
const expMs = (token: string) =>
  (JSON.parse(Buffer.from(token.split('.')[1] as string, 'base64url').toString()) as { exp: number }).exp * 1000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const clients: BusConsumer[] = [];
const track = (c: BusConsumer) => {
  clients.push(c);
  return c;
};

describe('token refresh against a real gateway', () => {
  let g: GatewayHandle;
  beforeAll(async () => {
    // No clock tolerance: the 4011 close comes GRACE_MS after exp.
    g = await startGateway({
      authMode: 'jwt',
      jwtSecret: SECRET,
      tokenRefreshLeadMs: LEAD_MS,
      tokenExpiryGraceMs: GRACE_MS,
      tokenClockToleranceMs: 0,
    });
  });
  afterEach(() => {
    for (const c of clients.splice(0)) c.close();
  });
  afterAll(() => g.stop());

  it('keeps one session across several token lifetimes: no reconnect, every event once and in order, RPCs answered', async () => {
    let issued = 0;
    const c = track(
      new BusConsumer({
        url: g.url,
        ...fast,
        getToken: () => {
          issued++;
          return tokenFor('refresh-user');
        },
      }),
    );
    const errors: Error[] = [];
    const refreshed: Array<number | undefined> = [];
    const got: number[] = [];
    c.onClient('error', (e) => errors.push(e));
    c.onClient('token_refreshed', (e) => refreshed.push(e.expiresAtMs));
    c.on('session.notice', (d) => got.push(Number(d.message)));
    await c.connect();

    // Three full lifetimes and then some, publishing and calling all along.
    const until = Date.now() + (LIFETIME_S * 3 + 1) * 1_000;
    let published = 0;
    let rpcs = 0;
    while (Date.now() < until) {
      await g.gw.publish('refresh-user', numbered(++published));
      if (published % 10 === 0) {
        const sessions = await c.rpc('REGISTRY.get_sessions', 'refresh-user');
        expect(Array.isArray(sessions.sessions)).toBe(true);
        rpcs++;
      }
      await sleep(50);
    }
    await waitFor(() => got.length >= published, `${published} events`);
    // A refresh may be under way as the loop ends (getToken called, the gateway's answer not yet in).
    await waitFor(() => issued === refreshed.length + 1, 'the last refresh answered');
    expect(got).toEqual(Array.from({ length: published }, (_, i) => i + 1));
    expect(c.counters.connects).toBe(1);
    expect(c.counters.reconnects).toBe(0);
    expect(c.counters.lastCloseCode).toBeUndefined();
    expect(c.counters.rpc).toMatchObject({ ok: rpcs, error: 0, timeout: 0 });
    expect(refreshed.length).toBeGreaterThanOrEqual(3);
    expect(issued).toBe(refreshed.length + 1);
    // Each refresh moved the deadline later.
    for (let i = 1; i < refreshed.length; i++) expect(refreshed[i]).toBeGreaterThanOrEqual(refreshed[i - 1] as number);
    expect(errors).toEqual([]);
  }, 30_000);

  it('stops when getToken returns a token for another user (4003 forbidden)', async () => {
    let calls = 0;
    const c = track(
      new BusConsumer({ url: g.url, ...fast, getToken: () => tokenFor(++calls === 1 ? 'user-a' : 'user-b') }),
    );
    const errors: Error[] = [];
    c.onClient('error', (e) => errors.push(e));
    await c.connect();
    await waitFor(() => c.state === 'closed', 'stopped', LIFETIME_S * 1_000 + 2_000);
    expect(c.counters.lastCloseCode).toBe(CloseCode.Forbidden);
    expect(errors.find((e) => e instanceof FatalCloseError)).toMatchObject({ reason: 'forbidden' });
    expect(calls).toBe(2);
  });

  it('with a static token: closed 4011 at expiry plus the grace, then stops', async () => {
    const token = tokenFor('static-user');
    const c = track(new BusConsumer({ url: g.url, token, ...fast }));
    const errors: Error[] = [];
    const closes: Array<{ code: number; willReconnect: boolean; at: number }> = [];
    c.onClient('error', (e) => errors.push(e));
    c.onClient('close', (e) => closes.push({ ...e, at: Date.now() }));
    await c.connect();
    await waitFor(() => c.state === 'closed', 'closed', LIFETIME_S * 1_000 + GRACE_MS + 3_000);
    expect(closes).toHaveLength(1);
    expect(closes[0]).toMatchObject({ code: CloseCode.TokenExpired, willReconnect: false });
    // When, relative to expiry plus grace, is a figure: the gateway's exact close time is
    // checked on fake timers in apps/gateway/src/core/token-lifetime.test.ts.
    process.stdout.write(
      `token expiry close figures: ${JSON.stringify({ lateByMs: (closes[0]?.at ?? 0) - (expMs(token) + GRACE_MS) })}\n`,
    );
    expect(errors.find((e) => e instanceof FatalCloseError)).toMatchObject({ reason: 'token_expired' });
  });

  it('with getToken failing at refresh time: closed 4011, reconnects at once with a fresh token, loses nothing', async () => {
    let calls = 0;
    const c = track(
      new BusConsumer({
        url: g.url,
        ...fast,
        getToken: () => {
          calls++;
          if (calls === 2) throw new Error('identity provider down');
          // Long-lived after the reconnect, so the test is about one expiry.
          return tokenFor('failing-refresh-user', calls === 1 ? LIFETIME_S : 600);
        },
      }),
    );
    const errors: Error[] = [];
    const closes: Array<{ code: number; willReconnect: boolean; delayMs?: number }> = [];
    const got: number[] = [];
    c.onClient('error', (e) => errors.push(e));
    c.onClient('close', (e) => closes.push(e));
    c.on('session.notice', (d) => got.push(Number(d.message)));
    await c.connect();
    let published = 0;
    const until = Date.now() + (LIFETIME_S + 2) * 1_000;
    while (Date.now() < until) {
      await g.gw.publish('failing-refresh-user', numbered(++published));
      await sleep(50);
    }
    await waitFor(() => got.length >= published && c.state === 'open', `${published} events`);
    expect(errors.map((e) => e.message)).toContain('identity provider down');
    expect(closes).toEqual([
      { code: CloseCode.TokenExpired, reason: 'token_expired', willReconnect: true, delayMs: 0 },
    ]);
    expect(c.counters.reconnects).toBe(1);
    expect(calls).toBe(3);
    expect(got).toEqual(Array.from({ length: published }, (_, i) => i + 1));
  }, 20_000);
});

describe('token refresh with the default settings (TOKEN_REFRESH_LEAD_MS 60 s) and 3-second tokens', () => {
  const LIFETIMES = 4;
  let g: GatewayHandle;
  beforeAll(async () => {
    g = await startGateway({ authMode: 'jwt', jwtSecret: SECRET });
  });
  afterEach(() => {
    for (const c of clients.splice(0)) c.close();
  });
  afterAll(() => g.stop());

  it('keeps one session across 4 lifetimes: 0 reconnects, at most 2 tokens minted per lifetime, one refresh in flight', async () => {
    const minted: Array<{ atMs: number; expMs: number }> = [];
    let inFlight = 0;
    let maxInFlight = 0;
    const c = track(
      new BusConsumer({
        url: g.url,
        ...fast,
        getToken: async () => {
          inFlight++;
          maxInFlight = Math.max(maxInFlight, inFlight);
          // An identity provider takes a moment: room for a second request to overlap this one.
          await sleep(30);
          inFlight--;
          const token = tokenFor('default-lead-user');
          minted.push({ atMs: Date.now(), expMs: expMs(token) });
          return token;
        },
      }),
    );
    const errors: Error[] = [];
    const refreshed: Array<number | undefined> = [];
    const got: number[] = [];
    c.onClient('error', (e) => errors.push(e));
    c.onClient('token_refreshed', (e) => refreshed.push(e.expiresAtMs));
    c.on('session.notice', (d) => got.push(Number(d.message)));
    await c.connect();
    const sessionId = c.session?.session_id;

    const until = Date.now() + LIFETIMES * LIFETIME_S * 1_000;
    let published = 0;
    while (Date.now() < until) {
      await g.gw.publish('default-lead-user', numbered(++published));
      await sleep(200);
    }
    await waitFor(() => got.length >= published, `${published} events`);
    // A refresh may be under way as the loop ends (a token minted, the gateway's answer not yet in).
    await waitFor(() => inFlight === 0 && minted.length === refreshed.length + 1, 'the last refresh answered');

    expect(c.state).toBe('open');
    expect(c.session?.session_id).toBe(sessionId);
    expect(c.counters).toMatchObject({ connects: 1, reconnects: 0, lastCloseCode: undefined });
    expect(got).toEqual(Array.from({ length: published }, (_, i) => i + 1));
    // The session outlived every token: each was replaced before it expired.
    expect(refreshed.length).toBeGreaterThanOrEqual(LIFETIMES);
    expect(minted).toHaveLength(refreshed.length + 1);
    // Within any token's lifetime, at most 2 more tokens were minted (one ask per token, at half its life).
    const mintedDuring = minted.map(
      ({ atMs, expMs: end }) => minted.filter((m) => m.atMs > atMs && m.atMs < end).length,
    );
    expect(Math.max(...mintedDuring)).toBeLessThanOrEqual(2);
    expect(maxInFlight).toBe(1);
    expect(errors).toEqual([]);
  }, 30_000);
});
