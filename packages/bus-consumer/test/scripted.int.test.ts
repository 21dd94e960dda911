// The client against a scripted gateway (a bare `ws` server speaking the protocol): token refresh and
// app pings tested frame by frame, independently of the real gateway's timing.
import {
  type ClientFrame,
  CloseCode,
  FRAME_HELLO_PROTOCOL,
  HELLO_PROTOCOL_PREFIX,
  PROTOCOL_VERSION,
  type ServerFrame,
  UPGRADE_HELLO_PROTOCOL,
} from '@livebus/protocol';
import { waitFor } from '@livebus/test-support';
import WebSocket, { WebSocketServer } from 'ws';
import { BusConsumer, FatalCloseError, type WebSocketLike } from '../src/index';
import { welcomeFrame } from './welcome-frame';

interface Peer {
  ws: WebSocket;
  /** The client's frames; a hello it carried in the upgrade comes first, as if sent. */
  frames: ClientFrame[];
  /** The subprotocols the client offered. */
  offered: string[];
  send(frame: ServerFrame): void;
}

/**
 * A gateway whose every move the test makes; it only answers `hello` with `welcome` by itself.
 * `helloInUpgrade`: it takes a hello carried in the upgrade (as the gateway does); without it, it
 * selects the first protocol offered, as a gateway of an older release (`ws`'s default).
 */
async function scriptedGateway({ helloInUpgrade = false } = {}) {
  const server = new WebSocketServer({
    port: 0,
    host: '127.0.0.1',
    ...(helloInUpgrade && {
      handleProtocols: (offered: Set<string>) =>
        [...offered].some((p) => p.startsWith(HELLO_PROTOCOL_PREFIX))
          ? UPGRADE_HELLO_PROTOCOL
          : (offered.values().next().value ?? false),
    }),
  });
  await new Promise((r) => server.once('listening', r));
  const peers: Peer[] = [];
  let offset = 0;
  server.on('connection', (ws, req) => {
    const offered = (req.headers['sec-websocket-protocol'] ?? '')
      .split(',')
      .map((p) => p.trim())
      .filter(Boolean);
    const peer: Peer = { ws, frames: [], offered, send: (f) => ws.send(JSON.stringify(f)) };
    peers.push(peer);
    const carried = offered.find((p) => p.startsWith(HELLO_PROTOCOL_PREFIX));
    if (ws.protocol === UPGRADE_HELLO_PROTOCOL && carried)
      setImmediate(() => ws.emit('message', Buffer.from(carried.slice(HELLO_PROTOCOL_PREFIX.length), 'base64url')));
    ws.on('message', (data) => {
      const frame = JSON.parse(String(data)) as ClientFrame;
      peer.frames.push(frame);
      if (frame.type === 'hello') {
        peer.send(welcomeFrame(frame, { status: frame.last_cursor ? 'resumed' : 'fresh', cursor: `e:${offset}` }));
      }
    });
  });
  return {
    url: `ws://127.0.0.1:${(server.address() as { port: number }).port}/ws`,
    peers,
    last: () => peers[peers.length - 1] as Peer,
    event: (peer: Peer, n: number) =>
      peer.send({
        type: 'event',
        event: 'session.notice',
        data: { level: 'info', message: String(n) },
        cursor: `e:${++offset}`,
        ts: Date.now(),
      }),
    close: async () => {
      for (const ws of server.clients) ws.terminate();
      await new Promise((r) => server.close(r));
    },
  };
}

type Gw = Awaited<ReturnType<typeof scriptedGateway>>;
const fast = { minReconnectDelayMs: 20, maxReconnectDelayMs: 100 };
const expiring = (peer: Peer) =>
  peer.send({ type: 'notice', kind: 'token_expiring', message: 'refresh', expires_at_ms: Date.now() + 1_000 });

describe('token refresh (scripted gateway)', () => {
  let gw: Gw;
  let client: BusConsumer | undefined;
  beforeEach(async () => {
    gw = await scriptedGateway();
  });
  afterEach(async () => {
    client?.close();
    client = undefined;
    await gw.close();
  });

  it('answers token_expiring with an auth frame on the same socket and reports token_refreshed', async () => {
    let n = 0;
    client = new BusConsumer({ url: gw.url, getToken: () => `token-${++n}`, ...fast });
    const refreshed: Array<{ expiresAtMs: number | undefined }> = [];
    const got: string[] = [];
    client.onClient('token_refreshed', (e) => refreshed.push(e));
    client.on('session.notice', (d) => got.push(d.message));
    await client.connect();
    const peer = gw.last();
    expect(peer.frames[0]).toMatchObject({ type: 'hello', token: 'token-1' });
    gw.event(peer, 1);
    expiring(peer);
    gw.event(peer, 2);
    await waitFor(() => peer.frames.some((f) => f.type === 'auth'), 'auth frame');
    expect(peer.frames.find((f) => f.type === 'auth')).toEqual({ type: 'auth', token: 'token-2' });
    peer.send({ type: 'notice', kind: 'token_refreshed', message: 'ok', expires_at_ms: 1_234_567 });
    gw.event(peer, 3);
    await waitFor(() => refreshed.length === 1 && got.length === 3, 'token_refreshed and three events');
    expect(refreshed).toEqual([{ expiresAtMs: 1_234_567 }]);
    expect(got).toEqual(['1', '2', '3']);
    expect(gw.peers).toHaveLength(1);
    expect(client.counters.reconnects).toBe(0);
    expect(client.state).toBe('open');
  });

  it('keeps the session when getToken throws, then reconnects at once with a fresh token on 4011, twice', async () => {
    let n = 0;
    let failRefresh = true;
    client = new BusConsumer({
      url: gw.url,
      ...fast,
      getToken: () => {
        n++;
        if (n > 1 && failRefresh) {
          failRefresh = false;
          throw new Error('identity provider down');
        }
        return `token-${n}`;
      },
    });
    const errors: Error[] = [];
    const closes: Array<{ reason: string; willReconnect: boolean; delayMs?: number }> = [];
    client.onClient('error', (e) => errors.push(e));
    client.onClient('close', (e) => closes.push(e));
    await client.connect();
    expiring(gw.last());
    await waitFor(() => errors.length === 1, 'error from getToken');
    expect(errors[0]?.message).toBe('identity provider down');
    expect(client.state).toBe('open');
    expect(gw.last().frames.some((f) => f.type === 'auth')).toBe(false);

    // The gateway gives up at the deadline: the client reconnects at once with a fresh token.
    gw.last().ws.close(CloseCode.TokenExpired, 'token_expired');
    await waitFor(() => gw.peers.length === 2 && client?.state === 'open', 'reconnected');
    expect(closes[0]).toEqual({
      code: CloseCode.TokenExpired,
      reason: 'token_expired',
      willReconnect: true,
      delayMs: 0,
    });
    expect(gw.last().frames[0]).toMatchObject({ type: 'hello', token: 'token-3' });

    // A later expiry of the new session is handled the same way, not treated as a second auth failure.
    gw.last().ws.close(CloseCode.TokenExpired, 'token_expired');
    await waitFor(() => gw.peers.length === 3 && client?.state === 'open', 'reconnected again');
    expect(closes.map((c) => c.willReconnect)).toEqual([true, true]);
    expect(client.counters.reconnects).toBe(2);
  });

  it('with a static token sends no auth frame and stops on 4011 (it cannot get a fresh token)', async () => {
    client = new BusConsumer({ url: gw.url, token: 'static', ...fast });
    const errors: Error[] = [];
    client.onClient('error', (e) => errors.push(e));
    await client.connect();
    expiring(gw.last());
    await new Promise((r) => setTimeout(r, 100));
    expect(gw.last().frames.map((f) => f.type)).toEqual(['hello']);
    gw.last().ws.close(CloseCode.TokenExpired, 'token_expired');
    await waitFor(() => client?.state === 'closed', 'stopped');
    expect(errors.find((e) => e instanceof FatalCloseError)).toMatchObject({
      code: CloseCode.TokenExpired,
      reason: 'token_expired',
    });
    expect(gw.peers).toHaveLength(1);
  });

  it('runs one refresh at a time: a token_expiring while one is under way starts no second getToken', async () => {
    let release: (() => void) | undefined;
    let calls = 0;
    client = new BusConsumer({
      url: gw.url,
      ...fast,
      getToken: async () => {
        calls++;
        if (calls === 2) await new Promise<void>((r) => (release = r)); // the first refresh is slow
        return `token-${calls}`;
      },
    });
    const got: string[] = [];
    client.on('session.notice', (d) => got.push(d.message));
    await client.connect();
    const peer = gw.last();
    const auths = () => peer.frames.filter((f) => f.type === 'auth');
    // Frames are handled in order: once the event after the notices is in, so are the notices.
    const handled = async (n: number) => {
      gw.event(peer, n);
      await waitFor(() => got.includes(String(n)), `event ${n}`);
    };

    expiring(peer);
    expiring(peer);
    expiring(peer);
    await handled(1);
    expect(calls).toBe(2); // the hello's token, then one refresh
    release?.();
    await waitFor(() => auths().length === 1, 'auth frame');
    // Sent, not yet answered: still under way.
    expiring(peer);
    await handled(2);
    expect(calls).toBe(2);

    peer.send({ type: 'notice', kind: 'token_refreshed', message: 'ok', expires_at_ms: Date.now() + 3_000 });
    expiring(peer);
    await waitFor(() => auths().length === 2, 'second auth frame');
    expect(calls).toBe(3);
    // A refused token ends the refresh too: the next ask is answered.
    peer.send({ type: 'error', code: 'not_authenticated', message: 'the fresh token was refused' });
    expiring(peer);
    await waitFor(() => auths().length === 3, 'third auth frame');
    expect(auths()).toEqual([
      { type: 'auth', token: 'token-2' },
      { type: 'auth', token: 'token-3' },
      { type: 'auth', token: 'token-4' },
    ]);
    expect(client.counters.reconnects).toBe(0);
  });

  it('drops a refreshed token whose socket closed while getToken was running', async () => {
    let release: (() => void) | undefined;
    let n = 0;
    client = new BusConsumer({
      url: gw.url,
      ...fast,
      getToken: async () => {
        n++;
        if (n === 2) await new Promise<void>((r) => (release = r)); // the refresh is slow
        return `token-${n}`;
      },
    });
    await client.connect();
    const first = gw.last();
    expiring(first);
    await waitFor(() => release !== undefined, 'refresh started');
    first.ws.terminate();
    await waitFor(() => gw.peers.length === 2 && client?.state === 'open', 'reconnected');
    release?.();
    await new Promise((r) => setTimeout(r, 100));
    expect(gw.last().frames.some((f) => f.type === 'auth')).toBe(false);
  });
});

describe('delivery by cursor (scripted gateway)', () => {
  let gw: Gw;
  let client: BusConsumer | undefined;
  beforeEach(async () => {
    gw = await scriptedGateway();
  });
  afterEach(async () => {
    client?.close();
    client = undefined;
    await gw.close();
  });
  const notice = (cursor: string, message: string): ServerFrame => ({
    type: 'event',
    event: 'session.notice',
    data: { level: 'info', message },
    cursor,
    ts: Date.now(),
  });

  it('hands over each cursor once, in order: a repeated or older one is a duplicate, another epoch a new stream', async () => {
    client = new BusConsumer({ url: gw.url, userId: 'u', ...fast });
    const got: string[] = [];
    client.on('session.notice', (d) => got.push(d.message));
    await client.connect();
    const peer = gw.last();
    for (const [cursor, message] of [
      ['e:1', '1'],
      ['e:2', '2'],
      ['e:2', 'again'],
      ['e:1', 'older'],
      ['e:3', '3'],
      ['f:1', 'f1'],
      ['f:2', 'f2'],
    ] as const) {
      peer.send(notice(cursor, message));
    }
    await waitFor(() => got.includes('f2'), 'the last event');
    expect(got).toEqual(['1', '2', '3', 'f1', 'f2']);
    expect(client.counters).toMatchObject({ eventsReceived: 5, duplicatesDropped: 2 });
    expect(client.lastCursor).toBe('f:2');
  });

  it('resumes after options.lastCursor: replayed events up to it are duplicates', async () => {
    client = new BusConsumer({ url: gw.url, userId: 'u', lastCursor: 'e:5', ...fast });
    const got: string[] = [];
    client.on('session.notice', (d) => got.push(d.message));
    await client.connect();
    const peer = gw.last();
    expect(peer.frames[0]).toMatchObject({ type: 'hello', last_cursor: 'e:5' });
    for (const n of [4, 5, 6]) peer.send(notice(`e:${n}`, String(n)));
    await waitFor(() => got.length === 1 && client?.counters.duplicatesDropped === 2, 'one event, two duplicates');
    expect(got).toEqual(['6']);
    expect(client.lastCursor).toBe('e:6');
  });

  it('takes frames sent as binary messages (UTF-8 JSON) like text ones', async () => {
    client = new BusConsumer({ url: gw.url, userId: 'u', ...fast });
    const got: string[] = [];
    client.on('session.notice', (d) => got.push(d.message));
    await client.connect();
    const peer = gw.last();
    peer.ws.send(Buffer.from(JSON.stringify(notice('e:1', 'binary'))), { binary: true });
    peer.send(notice('e:2', 'text'));
    await waitFor(() => got.length === 2, 'both events');
    expect(got).toEqual(['binary', 'text']);
  });

  it('reports a handler that throws and still runs the others, for this event and the next', async () => {
    client = new BusConsumer({ url: gw.url, userId: 'u', ...fast });
    const errors: string[] = [];
    const second: string[] = [];
    const any: string[] = [];
    client.onClient('error', (e) => errors.push(e.message));
    client.on('session.notice', (d) => {
      if (d.message === '1') throw new Error('handler failed');
    });
    client.on('session.notice', (d) => second.push(d.message));
    client.onAny((frame) => any.push(frame.cursor));
    await client.connect();
    gw.event(gw.last(), 1);
    gw.event(gw.last(), 2);
    await waitFor(() => any.length === 2, 'both events');
    expect(errors).toEqual(['handler failed']);
    expect(second).toEqual(['1', '2']);
    expect(any).toEqual(['e:1', 'e:2']);
    expect(client.state).toBe('open');
  });
});

/** A socket like the browser's: no protocol pings visible. */
class BrowserLikeSocket implements WebSocketLike {
  readonly #ws: WebSocket;
  onopen: ((event: unknown) => void) | null = null;
  onmessage: ((event: { data: unknown }) => void) | null = null;
  onclose: ((event: { code: number; reason: string }) => void) | null = null;
  onerror: ((event: unknown) => void) | null = null;
  constructor(url: string, protocols?: string[]) {
    this.#ws = new WebSocket(url, protocols);
    this.#ws.onopen = (e) => this.onopen?.(e);
    this.#ws.onmessage = (e) => this.onmessage?.({ data: String(e.data) });
    this.#ws.onclose = (e) => this.onclose?.({ code: e.code, reason: e.reason });
    this.#ws.onerror = (e) => this.onerror?.(e);
  }
  get readyState() {
    return this.#ws.readyState;
  }
  get protocol() {
    return this.#ws.protocol;
  }
  send(data: string) {
    this.#ws.send(data);
  }
  close(code?: number, reason?: string) {
    this.#ws.close(code, reason);
  }
}

describe('app pings (scripted gateway)', () => {
  let gw: Gw;
  let client: BusConsumer | undefined;
  beforeEach(async () => {
    gw = await scriptedGateway();
  });
  afterEach(async () => {
    client?.close();
    client = undefined;
    await gw.close();
  });

  it('asks for app pings when the socket cannot see protocol pings, and answers them', async () => {
    client = new BusConsumer({ url: gw.url, userId: 'u', WebSocket: BrowserLikeSocket, ...fast });
    await client.connect();
    const peer = gw.last();
    expect(peer.frames[0]).toMatchObject({ type: 'hello', app_ping: true });
    peer.send({ type: 'ping', ts: 42 });
    await waitFor(() => peer.frames.some((f) => f.type === 'pong'), 'pong');
    expect(peer.frames.find((f) => f.type === 'pong')).toEqual({ type: 'pong', ts: 42 });
  });

  it('close() on a gateway that does not answer still ends its socket soon (a Node process can exit)', async () => {
    const sockets = () => process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap').length;
    client = new BusConsumer({ url: gw.url, userId: 'u', ...fast });
    await client.connect();
    // The gateway reads nothing more: the client's close frame is never answered.
    (gw.last().ws as unknown as { _socket: { pause(): void } })._socket.pause();
    const open = sockets();
    client.close();
    // `ws` waits 30 s for the answer by default; the client gives it 1 s (CLOSE_TIMEOUT_MS), then
    // ends its socket (the gateway's, paused, stays).
    await waitFor(() => sockets() === open - 1, "the client's socket ended", 5_000);
  });

  it('does not ask for them with `ws`, which sees protocol pings', async () => {
    client = new BusConsumer({ url: gw.url, userId: 'u', ...fast });
    await client.connect();
    expect(gw.last().frames[0]).not.toHaveProperty('app_ping');
  });

  it('stays alive on the gateway pings alone (its own pings unanswered)', async () => {
    client = new BusConsumer({
      url: gw.url,
      userId: 'u',
      WebSocket: BrowserLikeSocket,
      pingIntervalMs: 50,
      pingTimeoutMs: 200,
      ...fast,
    });
    await client.connect();
    const peer = gw.last();
    const timer = setInterval(() => peer.send({ type: 'ping', ts: Date.now() }), 50);
    try {
      await new Promise((r) => setTimeout(r, 800));
      expect(client.state).toBe('open');
      expect(client.counters.lastCloseReason).toBeUndefined();
    } finally {
      clearInterval(timer);
    }
    // Silence now: declared dead after the timeout.
    await waitFor(() => client?.counters.lastCloseReason === 'ping_timeout', 'ping timeout', 2_000);
  });
});

describe('the hello in the upgrade (scripted gateway)', () => {
  let gw: Gw | undefined;
  let client: BusConsumer | undefined;
  afterEach(async () => {
    client?.close();
    client = undefined;
    await gw?.close();
  });

  const hello = (peer: Peer) => peer.frames.find((f) => f.type === 'hello');
  const carried = (peer: Peer) => {
    const value = peer.offered.find((p) => p.startsWith(HELLO_PROTOCOL_PREFIX)) ?? '';
    return JSON.parse(Buffer.from(value.slice(HELLO_PROTOCOL_PREFIX.length), 'base64url').toString());
  };

  it('carries the hello in the upgrade to a gateway that takes it there, and sends no hello frame', async () => {
    gw = await scriptedGateway({ helloInUpgrade: true });
    client = new BusConsumer({ url: gw.url, getToken: async () => 'tok', route: '/inbox', ...fast });
    await client.connect();
    const peer = gw.last();
    expect(peer.ws.protocol).toBe(UPGRADE_HELLO_PROTOCOL);
    expect(peer.offered.slice(0, 2)).toEqual([FRAME_HELLO_PROTOCOL, UPGRADE_HELLO_PROTOCOL]);
    expect(carried(peer)).toMatchObject({ type: 'hello', v: PROTOCOL_VERSION, token: 'tok', route: '/inbox' });
    // The carried hello is the only one: the client sent none as a frame.
    expect(peer.frames).toEqual([carried(peer)]);
  });

  it('sends the same hello as a frame to a gateway that answers `livebus` (an older release)', async () => {
    gw = await scriptedGateway();
    client = new BusConsumer({ url: gw.url, token: 'tok', WebSocket: BrowserLikeSocket, ...fast });
    await client.connect();
    const peer = gw.last();
    expect(peer.ws.protocol).toBe(FRAME_HELLO_PROTOCOL);
    expect(peer.frames).toEqual([carried(peer)]);
    expect(hello(peer)).toMatchObject({ token: 'tok', app_ping: true });
  });

  it('opens the socket anyway when getToken fails first, and asks again once it is open', async () => {
    gw = await scriptedGateway({ helloInUpgrade: true });
    const answers = [() => Promise.reject(new Error('offline')), async () => 'tok'];
    let calls = 0;
    client = new BusConsumer({ url: gw.url, getToken: () => (answers[calls++] as () => Promise<string>)(), ...fast });
    await client.connect();
    expect(calls).toBe(2);
    expect(gw.last().offered).toEqual([]);
    expect(hello(gw.last())).toMatchObject({ token: 'tok' });
  });

  it('offers no protocol with helloInUpgrade: false', async () => {
    gw = await scriptedGateway({ helloInUpgrade: true });
    client = new BusConsumer({ url: gw.url, token: 'tok', helloInUpgrade: false, ...fast });
    await client.connect();
    expect(gw.last().offered).toEqual([]);
    expect(hello(gw.last())).toMatchObject({ token: 'tok' });
  });

  it('sends a hello too long for a header as a frame', async () => {
    gw = await scriptedGateway({ helloInUpgrade: true });
    client = new BusConsumer({ url: gw.url, token: 'x'.repeat(8_000), ...fast });
    await client.connect();
    expect(gw.last().offered).toEqual([]);
    expect(hello(gw.last())).toMatchObject({ token: 'x'.repeat(8_000) });
  });
});

describe('options', () => {
  it('lateWakeupGraceMs defaults to min(pingIntervalMs, 5 s) and refuses a negative value', () => {
    expect(new BusConsumer({ url: 'ws://x/ws' }).options.lateWakeupGraceMs).toBe(5_000);
    expect(
      new BusConsumer({ url: 'ws://x/ws', pingIntervalMs: 300, pingTimeoutMs: 900 }).options.lateWakeupGraceMs,
    ).toBe(300);
    expect(() => new BusConsumer({ url: 'ws://x/ws', lateWakeupGraceMs: -1 })).toThrow(TypeError);
    expect(() => new BusConsumer({ url: 'ws://x/ws', pingIntervalMs: 0, pingTimeoutMs: 10 })).toThrow(TypeError);
  });
});
