// connect() says why it failed: a wrong path (HTTP 404 to the upgrade), a URL without a scheme,
// and the gateway's reason for refusing the credentials. And close() hands held batches over.
import { JwtAuthenticator, signJwt } from '@livebus/gateway';
import { CloseCode } from '@livebus/protocol';
import { waitFor } from '@livebus/test-support';
import { WebSocketServer } from 'ws';
import { BusConsumer, ConnectError, FatalCloseError, RpcError } from '../src/index';
import { type GatewayHandle, numbered, startGateway } from './helpers';

const fast = { minReconnectDelayMs: 20, maxReconnectDelayMs: 100 };
const clients: BusConsumer[] = [];
const track = (c: BusConsumer) => {
  clients.push(c);
  return c;
};
afterEach(() => {
  for (const c of clients.splice(0)) c.close();
});

/** What connect() rejected with. */
async function connectError(c: BusConsumer): Promise<ConnectError> {
  const error = await c.connect().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ConnectError);
  return error as ConnectError;
}

describe('a call larger than the gateway takes (MAX_PAYLOAD_BYTES)', () => {
  it('fails unavailable, and the session comes back (1009 is no reason to stop for good)', async () => {
    const g = await startGateway({ maxPayloadBytes: 4_096 });
    try {
      const c = track(new BusConsumer({ url: g.url, userId: 'big', ...fast }));
      c.onClient('error', () => {});
      await c.connect();
      const huge = c
        .rpc('TASK.start_document_analysis', 'big', { content: 'x'.repeat(10_000) }, 'job-1')
        .catch((e: unknown) => e);
      expect(await huge).toMatchObject({ code: 'unavailable' });
      await waitFor(() => c.state === 'open' && c.counters.connects === 2, 'the session back');
      expect(c.counters.lastCloseCode).toBe(CloseCode.MessageTooBig);
    } finally {
      await g.stop();
    }
  });
});

describe('a URL that is not a livebus endpoint', () => {
  let g: GatewayHandle;
  beforeAll(async () => {
    g = await startGateway();
  });
  afterAll(() => g.stop());

  it('HTTP 404 to the upgrade (wrong path) rejects connect() naming the status and the URL, and stops', async () => {
    const url = g.url.replace(/\/ws$/, '/wrong');
    const c = track(new BusConsumer({ url, userId: 'u', ...fast }));
    const errors: Error[] = [];
    c.onClient('error', (e) => errors.push(e));
    const call = c.rpc('REGISTRY.get_sessions', 'u').catch((e: unknown) => e);
    const error = await connectError(c);
    expect(error).toMatchObject({ code: 'not_livebus_endpoint', status: 404, url });
    expect(error.message).toBe(`not a livebus endpoint: HTTP 404 from ${url}`);
    expect(c.state).toBe('closed');
    expect(errors).toEqual([error]);
    // The queued call fails with the same reason, not a timeout.
    const failed = (await call) as RpcError;
    expect(failed).toBeInstanceOf(RpcError);
    expect(failed).toMatchObject({ code: 'unavailable', cause: error });
    // Stopped for good: no timer left to retry with.
    await new Promise((r) => setTimeout(r, 150));
    expect(c.counters).toMatchObject({ connects: 0, lastCloseCode: CloseCode.AbnormalClosure });
    expect(c.state).toBe('closed');
  });

  it('a user id the protocol refuses is refused at once, not left to time out', () => {
    expect(() => new BusConsumer({ url: g.url, userId: 'x'.repeat(129) })).toThrow(/userId must be 1 to 128/);
  });

  it('a URL without a scheme is refused at once', () => {
    const host = g.url.replace(/^ws:\/\//, '');
    expect(() => new BusConsumer({ url: host, userId: 'u' })).toThrow(TypeError);
    expect(() => new BusConsumer({ url: host, userId: 'u' })).toThrow(`url has no scheme: ${host}`);
    expect(() => new BusConsumer({ url: 'localhost:8080/ws', userId: 'u' })).toThrow(/unknown scheme localhost:/);
    expect(() => new BusConsumer({ url: '/ws', userId: 'u' })).toThrow(/no scheme/);
    expect(() => new BusConsumer({ url: 'ftp://127.0.0.1/ws', userId: 'u' })).toThrow(/unknown scheme ftp:/);
  });

  it('a refused user id (AUTH_MODE=none, the token names the user) says invalid_subject', async () => {
    const c = track(new BusConsumer({ url: g.url, token: 'x'.repeat(129), ...fast }));
    const errors: Error[] = [];
    c.onClient('error', (e) => errors.push(e));
    const closes: Array<{ authReason?: string; willReconnect: boolean }> = [];
    c.onClient('close', ({ authReason, willReconnect }) => closes.push({ authReason, willReconnect }));
    const error = await connectError(c);
    expect(error).toMatchObject({ code: 'invalid_subject', closeCode: CloseCode.AuthFailed });
    // The last close, the one that stops the client, says why too.
    expect(closes.at(-1)).toEqual({ authReason: 'invalid_subject', willReconnect: false });
    expect(error.message).toContain('invalid_subject');
    expect(errors.find((e) => e instanceof FatalCloseError)).toMatchObject({
      code: CloseCode.AuthFailed,
      reason: 'auth_failed',
      authReason: 'invalid_subject',
    });
  });

  it('close() hands the batches grouped handlers hold over at once', async () => {
    const c = track(new BusConsumer({ url: g.url, userId: 'group-close', ...fast }));
    const batches: string[][] = [];
    c.on('session.notice', (batch) => batches.push(batch.map((e) => e.data.message)), { groupWindowMs: 60_000 });
    await c.connect();
    await g.gw.publish('group-close', numbered(1));
    await g.gw.publish('group-close', numbered(2));
    await waitFor(() => c.counters.eventsReceived === 2, 'two events received');
    expect(batches).toEqual([]);
    c.close();
    expect(batches).toEqual([['1', '2']]);
  });
});

describe('the gateway says why it refused the token', () => {
  const SECRET = 'connect-errors-secret-long-enough-0123456';
  const now = () => Math.floor(Date.now() / 1000);
  let g: GatewayHandle;
  beforeAll(async () => {
    g = await startGateway({ authMode: 'jwt', jwtSecret: SECRET }, () => ({
      auth: new JwtAuthenticator({ secret: SECRET, serviceRoleClaim: 'livebus_service' }),
    }));
  });
  afterAll(() => g.stop());

  it('an expired static token: token_expired, in the code and the message', async () => {
    const token = signJwt({ sub: 'u', exp: now() - 3600 }, SECRET);
    const c = track(new BusConsumer({ url: g.url, token, ...fast }));
    c.onClient('error', () => {});
    const error = await connectError(c);
    expect(error).toMatchObject({ code: 'token_expired', closeCode: CloseCode.AuthFailed, url: g.url });
    expect(error.message).toMatch(/^the gateway refused the credentials: token_expired \(.*fresh/);
    expect(error.cause).toBeInstanceOf(FatalCloseError);
  });

  it('a static token refused: one attempt, not a second with the same token', async () => {
    const token = signJwt({ sub: 'u', exp: now() + 600 }, 'another-secret-that-is-long-enough-000000');
    const c = track(new BusConsumer({ url: g.url, token, ...fast }));
    const states: string[] = [];
    c.onClient('state', (s) => states.push(s.newState));
    c.onClient('error', () => {});
    expect(await connectError(c)).toMatchObject({ code: 'bad_signature', closeCode: CloseCode.AuthFailed });
    expect(states.filter((s) => s === 'connecting')).toHaveLength(1);
  });

  it('a getToken that throws (the identity provider away) is no refusal: retried with backoff, the error told, open once it answers', async () => {
    let calls = 0;
    const getToken = () => {
      calls++;
      if (calls <= 3) throw new Error(`token service unreachable (${calls})`);
      return signJwt({ sub: 'u', exp: now() + 600 }, SECRET);
    };
    const c = track(new BusConsumer({ url: g.url, getToken, ...fast }));
    const errors: Error[] = [];
    c.onClient('error', (e) => errors.push(e));
    await c.connect();
    expect(c.state).toBe('open');
    expect(calls).toBe(4);
    // A failure before the socket opens is asked again once it is open; the second is told.
    expect(errors.length).toBeGreaterThan(0);
    for (const e of errors) expect(e.message).toMatch(/^token service unreachable \(\d\)$/);
    expect(c.counters).toMatchObject({
      connects: 1,
      lastCloseCode: CloseCode.AuthTimeout,
      lastCloseReason: 'auth_timeout',
    });
  });

  it('a getToken that gives a token no hello may carry (over 8 192 characters) is refused, not retried for ever', async () => {
    let calls = 0;
    const getToken = () => {
      calls++;
      return 't'.repeat(8193);
    };
    const c = track(new BusConsumer({ url: g.url, getToken, ...fast }));
    c.onClient('error', () => {});
    const error = await connectError(c);
    // Said as what it is: the client's refusal of what getToken gave, not the gateway's.
    expect(error).toMatchObject({ code: 'auth_failed', closeCode: CloseCode.AuthFailed });
    expect(error.message).toMatch(
      /^the client refused the token getToken gave \(.*8192 characters.*\); it was not sent$/,
    );
    expect(c.state).toBe('closed');
    expect(calls).toBe(2);
  });

  it('a static token or a route longer than the protocol takes is refused when the client is built', () => {
    expect(() => new BusConsumer({ url: g.url, token: 't'.repeat(8193) })).toThrow(
      /token or route: invalid frame: token: expected at most 8192 characters/,
    );
    expect(() => new BusConsumer({ url: g.url, token: 't', route: 'r'.repeat(513) })).toThrow(TypeError);
  });

  it('a token signed with another secret, twice from getToken: bad_signature', async () => {
    let calls = 0;
    const getToken = () => {
      calls++;
      return signJwt({ sub: 'u', exp: now() + 600 }, 'another-secret-that-is-long-enough-000000');
    };
    const c = track(new BusConsumer({ url: g.url, getToken, ...fast }));
    c.onClient('error', () => {});
    expect(await connectError(c)).toMatchObject({ code: 'bad_signature' });
    expect(calls).toBe(2);
  });
});

describe('an older gateway (4001 without a known reason)', () => {
  it('says auth_failed, with no reason given', async () => {
    const server = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    await new Promise((r) => server.once('listening', r));
    server.on('connection', (ws) => ws.on('message', () => ws.close(CloseCode.AuthFailed, 'auth failed')));
    try {
      const url = `ws://127.0.0.1:${(server.address() as { port: number }).port}/ws`;
      const c = track(new BusConsumer({ url, token: 't', ...fast }));
      c.onClient('error', () => {});
      const error = await connectError(c);
      expect(error).toMatchObject({ code: 'auth_failed', closeCode: CloseCode.AuthFailed });
      expect(error.message).toContain('no reason');
    } finally {
      for (const ws of server.clients) ws.terminate();
      await new Promise((r) => server.close(r));
    }
  });
});

describe('a WebSocket constructor that throws (a bad URL, a blocked port, ws:// from an https page)', () => {
  it('stops at once: connect() rejects with cannot_open naming the URL and the cause, no retry', async () => {
    const thrown = new Error("Failed to construct 'WebSocket': The port 6000 is not allowed.");
    let calls = 0;
    class Refusing {
      constructor() {
        calls++;
        throw thrown;
      }
    }
    const url = 'ws://127.0.0.1:6000/ws';
    const c = track(new BusConsumer({ url, userId: 'u', WebSocket: Refusing as never, ...fast }));
    const errors: Error[] = [];
    c.onClient('error', (e) => errors.push(e));
    const closes: Array<{ code: number; willReconnect: boolean }> = [];
    c.onClient('close', ({ code, willReconnect }) => closes.push({ code, willReconnect }));
    const call = c.rpc('REGISTRY.get_sessions', 'u').catch((e: unknown) => e);
    const connecting = connectError(c);
    // Stopped within connect(): no reconnect timer to wait for.
    expect(c.state).toBe('closed');
    const error = await connecting;
    expect(error).toMatchObject({ code: 'cannot_open', url, cause: thrown });
    expect(error.message).toBe(`cannot open a WebSocket to ${url}: ${thrown.message}`);
    expect(errors).toEqual([error]);
    expect(closes).toEqual([{ code: CloseCode.AbnormalClosure, willReconnect: false }]);
    expect(await call).toMatchObject({ code: 'unavailable', cause: error });
    expect(calls).toBe(1);
  });
});
