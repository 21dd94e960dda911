// What the client does when the application's own callbacks act on it or fail: `close()` called
// from a listener, an `error` listener that throws; and the failures it must not mistake for a
// refused credential (a 4001 that says "try again later", a persisted cursor that is not one).
// Sockets driven by hand, fake clock.
import { PROTOCOL_VERSION } from '@livebus/protocol/client';
import { BusConsumer as BrowserBusConsumer } from './browser';
import { BusConsumer } from './consumer';
import type { WebSocketLike } from './transport/socket';

const sockets: HandSocket[] = [];

/** A browser-like socket the test opens, welcomes and ends by hand. */
class HandSocket implements WebSocketLike {
  readyState = 0;
  protocol = '';
  sent: string[] = [];
  /** The subprotocols it was opened with: with the hello in the upgrade, the hello. */
  protocols: string[] | undefined;
  onopen: WebSocketLike['onopen'] = null;
  onmessage: WebSocketLike['onmessage'] = null;
  onclose: WebSocketLike['onclose'] = null;
  onerror: WebSocketLike['onerror'] = null;

  constructor(_url: string, protocols?: string[]) {
    this.protocols = protocols;
    sockets.push(this);
  }

  /** The hellos the client sent on this socket: in the upgrade (its last subprotocol) and as frames. */
  hellos(): Array<{ token?: string }> {
    const carried = this.protocols?.[2]?.slice('livebus.hello.'.length);
    const inUpgrade = carried ? [Buffer.from(carried, 'base64url').toString()] : [];
    return [...inUpgrade, ...this.sent].map((text) => JSON.parse(text)).filter((frame) => frame.type === 'hello');
  }

  send(data: string): void {
    this.sent.push(data);
  }

  close(code = 1005, reason = ''): void {
    if (this.readyState < 2) this.readyState = 2;
    setTimeout(() => this.end(code, reason), 0); // as browsers: a later task
  }

  open(): void {
    this.readyState = 1;
    this.onopen?.({});
  }

  welcome(status: 'fresh' | 'gap' = 'fresh', cursor = 'e:0'): void {
    const heartbeat = { ping_interval_ms: 20_000, ping_timeout_ms: 60_000 };
    this.frame({
      type: 'welcome',
      v: PROTOCOL_VERSION,
      session_id: 's',
      user_id: 'u',
      instance_id: 'i',
      heartbeat,
      resume: { status, cursor, replayed: 0 },
    });
  }

  frame(frame: unknown): void {
    this.onmessage?.({ data: JSON.stringify(frame) });
  }

  end(code: number, reason = ''): void {
    if (this.readyState === 3) return;
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }
}

function client(options: Record<string, unknown> = {}): BusConsumer {
  const c = new BusConsumer({ url: 'ws://gateway.test/ws', userId: 'u', WebSocket: HandSocket, ...options });
  c.onClient('error', () => {});
  return c;
}

/** The first event of the user's stream: a `session.notice`. */
const NOTICE_EVENT = {
  type: 'event',
  event: 'session.notice',
  cursor: 'e:1',
  ts: 1,
  data: { level: 'info', message: 'm' },
};

/** Connects and welcomes the first socket. */
function opened(options: Record<string, unknown> = {}): { c: BusConsumer; socket: HandSocket } {
  const c = client(options);
  c.connect().catch(() => {});
  const socket = sockets[0] as HandSocket;
  socket.open();
  socket.welcome();
  return { c, socket };
}

/** As {@link opened}, for a client whose token comes from `getToken` (its socket opens once it answered). */
async function openedByToken(getToken: () => unknown): Promise<{ c: BusConsumer; socket: HandSocket }> {
  const c = client({ userId: undefined, getToken });
  c.connect().catch(() => {});
  await jest.advanceTimersByTimeAsync(0);
  const socket = sockets[0] as HandSocket;
  socket.open();
  await jest.advanceTimersByTimeAsync(0);
  socket.welcome();
  return { c, socket };
}

beforeEach(() => {
  sockets.length = 0;
  jest.useFakeTimers({ now: 1_000_000 });
});
afterEach(() => jest.useRealTimers());

describe('close() from a listener', () => {
  it('from `close`: the client stays closed, opens no socket and leaves no timer', () => {
    const { c, socket } = opened();
    c.onClient('close', () => c.close());
    socket.end(1006);
    expect(c.state).toBe('closed');
    jest.advanceTimersByTime(60_000);
    expect(sockets).toHaveLength(1);
    expect(jest.getTimerCount()).toBe(0);
  });

  it('from `state` (reconnecting): no reconnect timer is left', () => {
    const { c, socket } = opened();
    c.onClient('state', ({ newState }) => {
      if (newState === 'reconnecting') c.close();
    });
    socket.end(1006);
    expect(c.state).toBe('closed');
    expect(jest.getTimerCount()).toBe(0);
  });

  it('from `state` (connecting): no socket is opened', () => {
    const c = client();
    c.onClient('state', ({ newState }) => {
      if (newState === 'connecting') c.close();
    });
    c.connect().catch(() => {});
    expect(c.state).toBe('closed');
    expect(sockets).toHaveLength(0);
    expect(jest.getTimerCount()).toBe(0);
  });

  it('from `state`: the listeners after it hear `closed` last, never the change it ended', () => {
    const c = client();
    c.onClient('state', ({ newState }) => {
      if (newState === 'open') c.close();
    });
    const seen: string[] = [];
    c.onClient('state', ({ newState }) => seen.push(newState));
    c.connect().catch(() => {});
    (sockets[0] as HandSocket).open();
    (sockets[0] as HandSocket).welcome();
    expect(seen).toEqual(['connecting', 'closed']);
  });

  it('from `close`: the listeners after it do not hear of a reconnect', () => {
    const { c, socket } = opened();
    c.onClient('close', () => c.close());
    const seen: boolean[] = [];
    c.onClient('close', ({ willReconnect }) => seen.push(willReconnect));
    socket.end(1006);
    expect(seen).toEqual([]);
  });

  it('from an event handler: the handlers after it do not get the event (no grouped timer left)', () => {
    const { c, socket } = opened();
    c.on('session.notice', () => c.close());
    const batches: unknown[] = [];
    c.on('session.notice', (batch) => batches.push(batch), { groupWindowMs: 5_000 });
    socket.frame(NOTICE_EVENT);
    jest.advanceTimersByTime(1); // the socket's close event
    expect(jest.getTimerCount()).toBe(0);
    expect(batches).toEqual([]);
  });

  it('from `notice`: a token_expiring it ended asks for no token', async () => {
    let asked = 0;
    const c = client({
      userId: undefined,
      helloInUpgrade: false,
      getToken: async () => {
        asked++;
        return 't';
      },
    });
    c.connect().catch(() => {});
    const socket = sockets[0] as HandSocket;
    socket.open();
    await jest.advanceTimersByTimeAsync(0);
    socket.welcome();
    c.onClient('notice', () => c.close());
    socket.frame({ type: 'notice', kind: 'token_expiring', message: 'm', expires_at_ms: 2_000_000 });
    await jest.advanceTimersByTimeAsync(0);
    expect(asked).toBe(1); // the hello's only
  });

  it('from `gap`: the client stays closed and does not announce `open`', () => {
    const c = client({ lastCursor: 'e:5' });
    c.onClient('gap', () => c.close());
    const opens: unknown[] = [];
    c.onClient('open', (welcome) => opens.push(welcome));
    c.connect().catch(() => {});
    const socket = sockets[0] as HandSocket;
    socket.open();
    socket.welcome('gap', 'e:9');
    expect(c.state).toBe('closed');
    expect(opens).toEqual([]);
    jest.advanceTimersByTime(1); // the socket's close event
    expect(jest.getTimerCount()).toBe(0);
  });
});

describe('an `error` listener that throws', () => {
  it('gets each error once; what it throws goes to console.error, not back to it nor out of the socket callback', () => {
    const { c, socket } = opened();
    const seen: string[] = [];
    c.onClient('error', (error) => {
      seen.push(error.message);
      throw new Error('the logger failed');
    });
    c.on('session.notice', () => {
      throw new Error('handler bug');
    });
    const logged = jest.spyOn(console, 'error').mockImplementation(() => {});
    try {
      socket.frame(NOTICE_EVENT);
      expect(seen).toEqual(['handler bug']);
      expect(logged).toHaveBeenCalledTimes(1);
      expect((logged.mock.calls[0] as unknown[])[0]).toMatchObject({ message: 'the logger failed' });
    } finally {
      logged.mockRestore();
    }
    expect(c.state).toBe('open');
  });
});

describe('no `error` listener', () => {
  it('a throwing handler and a dropped invalid frame go to console.error; delivery goes on', () => {
    const c = new BusConsumer({ url: 'ws://gateway.test/ws', userId: 'u', WebSocket: HandSocket });
    c.connect().catch(() => {});
    const socket = sockets[0] as HandSocket;
    socket.open();
    socket.welcome();
    const handled: string[] = [];
    c.on('session.notice', () => {
      throw new TypeError('render bug');
    });
    c.on('session.notice', (_, frame) => handled.push(frame.cursor));
    const logged = jest.spyOn(console, 'error').mockImplementation(() => {});
    try {
      expect(() => socket.frame(NOTICE_EVENT)).not.toThrow();
      expect(() => socket.frame({ ...NOTICE_EVENT, cursor: 'e:2', data: { level: 'loud' } })).not.toThrow();
      expect(logged.mock.calls.map((call) => (call[0] as Error).name)).toEqual(['TypeError', 'FrameError']);
    } finally {
      logged.mockRestore();
    }
    expect(handled).toEqual(['e:1']);
    expect(c.state).toBe('open');
    c.close();
  });
});

describe('no `error` listener: the stop', () => {
  function unheard(): { c: BusConsumer; logged: jest.SpyInstance } {
    const c = new BusConsumer({ url: 'ws://gateway.test/ws', userId: 'u', WebSocket: HandSocket });
    return { c, logged: jest.spyOn(console, 'error').mockImplementation(() => {}) };
  }
  afterEach(() => jest.restoreAllMocks());

  it('is not reported again when it rejected a pending connect(): the app has it there', async () => {
    const { c, logged } = unheard();
    const connected = c.connect();
    const socket = sockets[0] as HandSocket;
    socket.open();
    socket.end(4003, 'forbidden');
    await expect(connected).rejects.toMatchObject({ name: 'ConnectError', code: 'forbidden' });
    expect(c.state).toBe('closed');
    expect(logged).not.toHaveBeenCalled();
  });

  it('is not reported when the socket cannot even be made, inside connect() (a static token, no await before it)', async () => {
    const logged = jest.spyOn(console, 'error').mockImplementation(() => {});
    class Refused {
      constructor() {
        throw new Error('SecurityError: an insecure WebSocket from an https page');
      }
    }
    const c = new BusConsumer({
      url: 'ws://gateway.test/ws',
      userId: 'u',
      WebSocket: Refused as unknown as typeof HandSocket,
    });
    await expect(c.connect()).rejects.toMatchObject({ name: 'ConnectError', code: 'cannot_open' });
    expect(c.state).toBe('closed');
    expect(logged).not.toHaveBeenCalled();
  });

  it('after connect() resolved, is reported once', async () => {
    const { c, logged } = unheard();
    const connected = c.connect();
    const socket = sockets[0] as HandSocket;
    socket.open();
    socket.welcome();
    await connected;
    socket.end(4003, 'forbidden');
    expect(c.state).toBe('closed');
    expect(logged.mock.calls.map((call) => (call[0] as Error).name)).toEqual(['FatalCloseError']);
  });
});

describe('a 4001 that says "try again later"', () => {
  it.each(['verifier_unavailable', 'internal_error'])(
    '%s: reconnects with backoff, as often as it takes',
    async (reason) => {
      const attempts: number[] = [];
      const c = client({
        userId: undefined,
        getToken: async () => 't',
        backoff: (attempt: number) => {
          attempts.push(attempt);
          return 100;
        },
      });
      const closes: Array<{ authReason?: string; willReconnect: boolean }> = [];
      c.onClient('close', ({ authReason, willReconnect }) => closes.push({ authReason, willReconnect }));
      const connected = c.connect();
      for (let i = 0; i < 5; i++) {
        await jest.advanceTimersByTimeAsync(150);
        const socket = sockets[sockets.length - 1] as HandSocket;
        socket.open();
        socket.end(4001, reason);
      }
      await jest.advanceTimersByTimeAsync(150);
      expect(c.state).toBe('connecting');
      expect(sockets).toHaveLength(6);
      // Each failure grows the backoff (the gateway was reached), and the close says why.
      expect(attempts).toEqual([0, 1, 2, 3, 4]);
      expect(closes).toEqual(Array(5).fill({ authReason: reason, willReconnect: true }));
      const socket = sockets[5] as HandSocket;
      socket.open();
      socket.welcome();
      await connected;
      expect(c.state).toBe('open');
      c.close();
    },
  );

  it('any other reason: one more try at once with a fresh token, then stop', async () => {
    const c = client({ userId: undefined, getToken: async () => 't' });
    const connected = c.connect().catch((error: unknown) => error);
    await jest.advanceTimersByTimeAsync(0);
    (sockets[0] as HandSocket).open();
    (sockets[0] as HandSocket).end(4001, 'bad_signature');
    await jest.advanceTimersByTimeAsync(0);
    (sockets[1] as HandSocket).open();
    (sockets[1] as HandSocket).end(4001, 'bad_signature');
    expect(await connected).toMatchObject({ code: 'bad_signature' });
    expect(c.state).toBe('closed');
  });
});

describe('lastCursor', () => {
  it('null counts as none (sessionStorage.getItem on a first visit)', () => {
    expect(client({ lastCursor: null }).lastCursor).toBeUndefined();
  });

  it.each([['undefined'], [''], ['e:'], ['e:-1'], [42]])('refuses %p with a TypeError saying what it got', (value) => {
    expect(() => client({ lastCursor: value })).toThrow(/lastCursor is not a cursor/);
  });
});

describe('a getToken that settles after its attempt was superseded', () => {
  it('rejecting after a newer attempt was welcomed: the new session stays open, no error', async () => {
    let rejectFirst: (error: Error) => void = () => {};
    let asked = 0;
    const c = client({
      userId: undefined,
      helloInUpgrade: false,
      backoff: () => 100,
      getToken: () =>
        asked++ === 0
          ? new Promise<string>((_, reject) => {
              rejectFirst = reject;
            })
          : 't',
    });
    const errors: string[] = [];
    c.onClient('error', (error) => errors.push(error.message));
    c.connect().catch(() => {});
    (sockets[0] as HandSocket).open(); // the hello waits for the first token
    await jest.advanceTimersByTimeAsync(12_000); // the handshake timeout ends that attempt
    await jest.advanceTimersByTimeAsync(100);
    const socket = sockets[1] as HandSocket;
    socket.open();
    await jest.advanceTimersByTimeAsync(0);
    socket.welcome();
    expect(c.state).toBe('open');
    errors.length = 0;
    rejectFirst(new Error('late failure'));
    await jest.advanceTimersByTimeAsync(1);
    expect(socket.readyState).toBe(1);
    expect(c.state).toBe('open');
    expect(errors).toEqual([]);
    c.close();
  });

  it('rejecting after close(): no error on the closed client', async () => {
    let rejectToken: (error: Error) => void = () => {};
    const c = client({
      userId: undefined,
      helloInUpgrade: false,
      getToken: () =>
        new Promise<string>((_, reject) => {
          rejectToken = reject;
        }),
    });
    const errors: string[] = [];
    c.onClient('error', (error) => errors.push(error.message));
    c.connect().catch(() => {});
    (sockets[0] as HandSocket).open();
    c.close();
    rejectToken(new Error('after close'));
    await jest.advanceTimersByTimeAsync(1);
    expect(errors).toEqual([]);
    expect(c.state).toBe('closed');
  });
});

describe('a `backoff` option that fails', () => {
  it('throws: an `error` event, and the built-in backoff schedules the reconnect', () => {
    const { c, socket } = opened({
      backoff: () => {
        throw new Error('bad backoff');
      },
    });
    const errors: string[] = [];
    c.onClient('error', (error) => errors.push(error.message));
    const closes: Array<{ willReconnect: boolean; delayMs?: number }> = [];
    c.onClient('close', ({ willReconnect, delayMs }) => closes.push({ willReconnect, delayMs }));
    expect(() => socket.end(1006)).not.toThrow();
    expect(errors).toEqual(['bad backoff']);
    expect(c.state).toBe('reconnecting');
    expect(closes).toEqual([{ willReconnect: true, delayMs: expect.any(Number) }]);
    jest.advanceTimersByTime(500); // the built-in first ceiling (minReconnectDelayMs)
    expect(sockets).toHaveLength(2);
    expect(c.state).toBe('connecting');
    c.close();
  });

  it.each([[Number.NaN], [-1], [Number.POSITIVE_INFINITY], [2 ** 40]])(
    'returns %p: the next attempt waits a delay in range, not a 1 ms timer',
    (value) => {
      const random = jest.spyOn(Math, 'random').mockReturnValue(0.5);
      try {
        const { c, socket } = opened({ backoff: () => value });
        const errors: string[] = [];
        c.onClient('error', (error) => errors.push(error.message));
        socket.end(1006);
        // Every attempt fails at once: a 1 ms timer would open a socket per millisecond.
        for (let ms = 0; ms < 100; ms++) {
          jest.advanceTimersByTime(1);
          (sockets[sockets.length - 1] as HandSocket).end(1006);
        }
        expect(sockets.length).toBeLessThanOrEqual(2);
        jest.advanceTimersByTime(30_000); // maxReconnectDelayMs
        expect(sockets.length).toBeGreaterThanOrEqual(2);
        // A delay no timer can keep is an error of the option; a long one is capped, silently.
        expect(errors.length > 0).toBe(value !== 2 ** 40);
        c.close();
      } finally {
        random.mockRestore();
      }
    },
  );
});

describe('getToken without a token yet (a page whose signed-in user is not restored yet)', () => {
  it.each([[true], [false]])(
    'helloInUpgrade %p: no hello without a token; errors, retries with backoff, connects once a token comes',
    async (helloInUpgrade) => {
      let token: string | undefined;
      const c = client({ userId: undefined, helloInUpgrade, getToken: () => token, backoff: () => 100 });
      const errors: string[] = [];
      c.onClient('error', (error) => errors.push(error.message));
      const connected = c.connect();
      for (let attempt = 0; attempt < 5; attempt++) {
        await jest.advanceTimersByTimeAsync(0); // getToken, before the upgrade
        (sockets[sockets.length - 1] as HandSocket).open();
        await jest.advanceTimersByTimeAsync(0); // getToken, for a hello as a frame
        expect(sockets.flatMap((socket) => socket.hellos())).toEqual([]);
        expect(c.state).toBe('reconnecting');
        await jest.advanceTimersByTimeAsync(100);
      }
      expect(sockets).toHaveLength(6);
      expect(errors).toEqual(Array(5).fill('getToken returned no token'));
      token = 't';
      await jest.advanceTimersByTimeAsync(0);
      const socket = sockets[5] as HandSocket;
      socket.open();
      await jest.advanceTimersByTimeAsync(0);
      expect(socket.hellos()).toEqual([expect.objectContaining({ token: 't' })]);
      socket.welcome();
      await connected;
      expect(c.state).toBe('open');
      c.close();
    },
  );
});

/** The `rpc` frames sent on a socket, in order. */
const rpcFrames = (socket: HandSocket): Array<{ id: number; args: unknown[] }> =>
  socket.sent.map((text) => JSON.parse(text)).filter((frame) => frame.type === 'rpc');

describe('rpc() from a listener of the welcome', () => {
  it('from `gap` with whileDisconnected "fail": goes out on the welcomed socket', async () => {
    const c = client({ lastCursor: 'e:5', whileDisconnected: 'fail' });
    let outcome = 'pending';
    c.onClient('gap', () => {
      c.rpc('REGISTRY.get_sessions', 'u').then(
        () => {
          outcome = 'answered';
        },
        (error: Error) => {
          outcome = error.message;
        },
      );
    });
    c.connect().catch(() => {});
    const socket = sockets[0] as HandSocket;
    socket.open();
    socket.welcome('gap', 'e:9');
    await jest.advanceTimersByTimeAsync(0);
    expect(rpcFrames(socket)).toHaveLength(1);
    expect(outcome).toBe('pending');
    socket.frame({ type: 'rpc_result', id: rpcFrames(socket)[0]?.id, result: { user_id: 'u', sessions: [] } });
    await jest.advanceTimersByTimeAsync(0);
    expect(outcome).toBe('answered');
    c.close();
  });

  it('calls queued while disconnected go out before those made in an `open` listener', () => {
    const c = client();
    c.rpc('REGISTRY.get_sessions', 'first').catch(() => {});
    c.onClient('open', () => {
      c.rpc('REGISTRY.get_sessions', 'second').catch(() => {});
    });
    c.connect().catch(() => {});
    const socket = sockets[0] as HandSocket;
    socket.open();
    socket.welcome();
    expect(rpcFrames(socket).map((frame) => frame.args[0])).toEqual(['first', 'second']);
    c.close();
  });

  it('and before those made in `gap` and `state` listeners', () => {
    const c = client({ lastCursor: 'e:5' });
    c.rpc('REGISTRY.get_sessions', 'queued').catch(() => {});
    c.onClient('gap', () => {
      c.rpc('REGISTRY.get_sessions', 'gap').catch(() => {});
    });
    c.onClient('state', ({ newState }) => {
      if (newState === 'open') c.rpc('REGISTRY.get_sessions', 'state').catch(() => {});
    });
    c.onClient('open', () => {
      c.rpc('REGISTRY.get_sessions', 'open').catch(() => {});
    });
    c.connect().catch(() => {});
    const socket = sockets[0] as HandSocket;
    socket.open();
    socket.welcome('gap', 'e:9');
    expect(rpcFrames(socket).map((frame) => frame.args[0])).toEqual(['queued', 'gap', 'state', 'open']);
    c.close();
  });
});

describe('a closed client', () => {
  it('stopped by the gateway: rpc() rejects with the reason as its cause', async () => {
    const { c, socket } = opened();
    socket.end(4003, 'forbidden');
    const reason = await c.connect().catch((error: unknown) => error); // what stopped it
    const error = await c.rpc('REGISTRY.get_sessions', 'u').catch((e: Error) => e);
    expect(error).toMatchObject({ code: 'unavailable', message: 'client is closed' });
    expect(reason).toMatchObject({ code: 'forbidden' });
    expect((error as Error).cause).toBe(reason);
  });

  it('a token refresh whose getToken rejects after close(): no `error` event', async () => {
    let rejectRefresh: (error: Error) => void = () => {};
    let asked = 0;
    const { c, socket } = await openedByToken(() =>
      asked++ === 0
        ? 't'
        : new Promise<string>((_, reject) => {
            rejectRefresh = reject;
          }),
    );
    socket.frame({ type: 'notice', kind: 'token_expiring', message: 'm', expires_at_ms: 2_000_000 });
    await jest.advanceTimersByTimeAsync(0);
    expect(asked).toBe(2);
    const errors: string[] = [];
    c.onClient('error', (error) => errors.push(error.message));
    c.close();
    rejectRefresh(new Error('after close'));
    await jest.advanceTimersByTimeAsync(1);
    expect(errors).toEqual([]);
  });
});

describe('a refreshed token the protocol refuses', () => {
  it.each([
    ['longer than 8 192 characters', 'x'.repeat(9000)],
    ['not a string', 42],
  ])('%s: an `error` (FrameError), the session kept, the next token_expiring refreshes again', async (_, bad) => {
    let asked = 0;
    const { c, socket } = await openedByToken(() => (asked++ === 0 ? 't' : asked === 2 ? bad : 'fresh'));
    const errors: Error[] = [];
    c.onClient('error', (error) => errors.push(error));
    const expiring = { type: 'notice', kind: 'token_expiring', message: 'm', expires_at_ms: 2_000_000 };
    socket.frame(expiring);
    await jest.advanceTimersByTimeAsync(0);
    expect(errors.map((e) => e.name)).toEqual(['FrameError']);
    expect(c.state).toBe('open');
    socket.frame(expiring);
    await jest.advanceTimersByTimeAsync(0);
    expect(asked).toBe(3);
    expect(socket.sent.map((text) => JSON.parse(text)).filter((f) => f.type === 'auth')).toEqual([
      { type: 'auth', token: 'fresh' },
    ]);
    c.close();
  });
});

describe('the backoff after sessions the gateway ends right after their welcome', () => {
  it('keeps growing; a session that stayed open 10 s resets it', () => {
    const attempts: number[] = [];
    const { c, socket } = opened({
      backoff: (attempt: number) => {
        attempts.push(attempt);
        return 100;
      },
    });
    let current = socket;
    const welcomeThenEnd = (openMs: number) => {
      jest.advanceTimersByTime(openMs);
      current.end(1011, 'internal error');
      jest.advanceTimersByTime(100);
      current = sockets[sockets.length - 1] as HandSocket;
      current.open();
      current.welcome();
    };
    for (let i = 0; i < 4; i++) welcomeThenEnd(0);
    expect(attempts).toEqual([0, 1, 2, 3]);
    welcomeThenEnd(9_999);
    expect(attempts).toEqual([0, 1, 2, 3, 4]);
    welcomeThenEnd(10_000);
    welcomeThenEnd(0);
    expect(attempts).toEqual([0, 1, 2, 3, 4, 0, 1]);
    c.close();
  });
});

describe("the gateway's reconnect_after_ms", () => {
  it.each([[120_000], [2 ** 31], [2 ** 40]])('%p is capped at maxReconnectDelayMs', (hintMs) => {
    const { c, socket } = opened();
    const delays: Array<number | undefined> = [];
    c.onClient('close', ({ delayMs }) => delays.push(delayMs));
    socket.frame({ type: 'notice', kind: 'shutting_down', message: 'm', reconnect_after_ms: hintMs });
    socket.end(1012, 'service restart');
    expect(delays).toEqual([30_000]);
    jest.advanceTimersByTime(29_999);
    expect(sockets).toHaveLength(1);
    jest.advanceTimersByTime(1);
    expect(sockets).toHaveLength(2);
    c.close();
  });
});

describe('browsers: back online, or the page shown again, while reconnecting', () => {
  const g = globalThis as { addEventListener?: unknown; removeEventListener?: unknown; document?: unknown };
  const win = new EventTarget();
  const doc = Object.assign(new EventTarget(), { visibilityState: 'hidden' });
  let listening = 0;
  beforeEach(() => {
    listening = 0;
    g.addEventListener = (type: string, fn: () => void) => {
      listening++;
      win.addEventListener(type, fn);
    };
    g.removeEventListener = (type: string, fn: () => void) => {
      listening--;
      win.removeEventListener(type, fn);
    };
    g.document = doc;
    jest.spyOn(doc, 'addEventListener').mockImplementation((type, fn) => {
      listening++;
      EventTarget.prototype.addEventListener.call(doc, type, fn);
    });
    jest.spyOn(doc, 'removeEventListener').mockImplementation((type, fn) => {
      listening--;
      EventTarget.prototype.removeEventListener.call(doc, type, fn);
    });
  });
  afterEach(() => {
    delete g.addEventListener;
    delete g.removeEventListener;
    delete g.document;
    jest.restoreAllMocks();
  });

  it('reconnects within the first ceiling, jittered, with the backoff reset; listeners go with close()', () => {
    // The wake's delay is fullJitter(0): random() * minReconnectDelayMs (500), here 250 ms.
    jest.spyOn(Math, 'random').mockReturnValue(0.5);
    const attempts: number[] = [];
    const backoff = (attempt: number) => {
      attempts.push(attempt);
      return 30_000;
    };
    const c = new BrowserBusConsumer({ url: 'ws://gateway.test/ws', userId: 'u', WebSocket: HandSocket, backoff });
    c.onClient('error', () => {});
    c.connect().catch(() => {});
    win.dispatchEvent(new Event('online')); // connecting: nothing to hurry
    expect(sockets).toHaveLength(1);
    (sockets[0] as HandSocket).end(1006);
    expect(c.state).toBe('reconnecting');
    win.dispatchEvent(new Event('online'));
    // Not in the same tick: a fleet whose shared network comes back would all open at once.
    expect(sockets).toHaveLength(1);
    jest.advanceTimersByTime(249);
    expect(sockets).toHaveLength(1);
    jest.advanceTimersByTime(1);
    expect(sockets).toHaveLength(2);
    expect(c.state).toBe('connecting');
    (sockets[1] as HandSocket).end(1006);
    doc.dispatchEvent(new Event('visibilitychange')); // still hidden
    jest.advanceTimersByTime(250);
    expect(sockets).toHaveLength(2);
    doc.visibilityState = 'visible';
    doc.dispatchEvent(new Event('visibilitychange'));
    expect(sockets).toHaveLength(2);
    jest.advanceTimersByTime(250);
    expect(sockets).toHaveLength(3);
    expect(attempts).toEqual([0, 0]);
    (sockets[2] as HandSocket).open();
    (sockets[2] as HandSocket).welcome();
    win.dispatchEvent(new Event('online')); // open: nothing to do
    expect(sockets).toHaveLength(3);
    expect(listening).toBe(2);
    c.close();
    expect(listening).toBe(0);
    jest.advanceTimersByTime(1);
    expect(jest.getTimerCount()).toBe(0);
  });

  it('a client stopped by the gateway lets them go too', () => {
    const c = new BrowserBusConsumer({ url: 'ws://gateway.test/ws', userId: 'u', WebSocket: HandSocket });
    c.onClient('error', () => {});
    c.connect().catch(() => {});
    expect(listening).toBe(2);
    (sockets[0] as HandSocket).end(4003, 'forbidden');
    expect(c.state).toBe('closed');
    expect(listening).toBe(0);
  });
});

describe('lastCursor with a grouped handler (docs/client.md: close() before saving it)', () => {
  it('counts the held batch; close() hands it over at once, so the cursor read after it is safe', () => {
    const { c, socket } = opened();
    const handed: string[] = [];
    c.on('session.notice', (batch) => handed.push(...batch.map((e) => e.cursor)), { groupWindowMs: 500 });
    for (const cursor of ['e:1', 'e:2', 'e:3']) socket.frame({ ...NOTICE_EVENT, cursor });
    expect(c.lastCursor).toBe('e:3');
    expect(handed).toEqual([]);
    c.close();
    expect(handed).toEqual(['e:1', 'e:2', 'e:3']);
    expect(c.lastCursor).toBe('e:3');
  });
});
