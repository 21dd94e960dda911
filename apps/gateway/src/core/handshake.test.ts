import { CloseCode, PROTOCOL_VERSION } from '@livebus/protocol';
import { waitFor } from '@livebus/test-support';
import { MemoryEventBus } from '../fleet/bus/memory-event-bus';
import type { GatewayHookEvents } from '../hooks';
import type { LogFields, Logger } from '../logger';
import { quietLogger, startCore } from './core-harness';

/** A logger that keeps what was logged at warn and error: event and fields. */
function recordingLogger() {
  const lines: Array<{ level: 'warn' | 'error'; event: string; fields?: LogFields }> = [];
  const logger: Logger = {
    ...quietLogger,
    warn: (event, fields) => lines.push({ level: 'warn', event, ...(fields ? { fields } : {}) }),
    error: (event, fields) => lines.push({ level: 'error', event, ...(fields ? { fields } : {}) }),
  };
  return { logger, lines };
}

/** A promise the test settles when it says: a Redis answer held back. */
function heldAnswer() {
  let answer!: () => void;
  let fail!: (error: Error) => void;
  const promise = new Promise<void>((resolve, reject) => {
    answer = resolve;
    fail = reject;
  });
  return { promise, answer, fail };
}

/** A hello of alice (session s1) to `core`, closed with `code` and `reason`; the closes heard meanwhile. */
async function helloClosed(core: ReturnType<typeof startCore>, code: number, reason: string) {
  const closes: GatewayHookEvents['session.close'][] = [];
  core.hooks.on('session.close', (e) => closes.push(e));
  const socket = core.connect();
  socket.receive({ type: 'hello', v: 1, user_id: 'alice', session_id: 's1' });
  expect(await socket.closed).toMatchObject({ code, reason });
  return { socket, closes };
}

/**
 * Makes `socket` a peer that does not answer the gateway's close (the gateway does not hear it
 * close); returns the codes the gateway closed it with.
 */
function peerNotAnsweringClose(socket: ReturnType<ReturnType<typeof startCore>['connect']>): number[] {
  const closes: number[] = [];
  socket.close = (code) => {
    closes.push(code);
    socket.isOpen = false;
  };
  return closes;
}

/** The `handshake_stalled` line of alice's session s1 past a 20 ms handshake timeout. */
const stalledLine = (waitingFor: string) => ({
  level: 'warn',
  event: 'handshake_stalled',
  fields: { uid: 'alice', session_id: 's1', waiting_for: waitingFor, timeout_ms: 20 },
});

describe('handshake', () => {
  let core: ReturnType<typeof startCore>;
  afterEach(() => core.stop());

  it('answers a hello with a welcome and opens the session (hook session.open)', async () => {
    core = startCore();
    const opened = core.hooks.next('session.open');
    const { socket, welcome } = await core.open('alice', { session_id: 's1', route: '/home' });
    expect(welcome).toMatchObject({
      type: 'welcome',
      v: PROTOCOL_VERSION,
      session_id: 's1',
      user_id: 'alice',
      instance_id: 'gw-test',
      resume: { status: 'fresh', replayed: 0 },
    });
    await expect(opened).resolves.toEqual({ uid: 'alice', sessionId: 's1', service: false });
    expect(core.hub.has('alice')).toBe(true);
    expect((await core.presence.sessions('alice')).map((s) => s.sessionId)).toEqual(['s1']);
    expect(core.handler.count).toBe(1);
    expect(socket.ended).toBeUndefined();
  });

  /** Slices the test hands out itself: `pending(n)` waits until n hellos wait for one. */
  function manualSlices() {
    const waiting: Array<() => void> = [];
    return {
      next: () => new Promise<void>((resume) => waiting.push(resume)),
      async pending(n: number) {
        for (let turn = 0; turn < 100 && waiting.length < n; turn++) await new Promise((r) => setImmediate(r));
        return waiting.length;
      },
      resumeAll: () => {
        for (const resume of waiting.splice(0)) resume();
      },
    };
  }

  it('goes on in its slices of the event loop (after the presence write, before the welcome); a socket closed meanwhile gets no welcome and leaves nothing behind', async () => {
    const slices = manualSlices();
    core = startCore({}, { slices });
    const opened: string[] = [];
    core.hooks.on('session.open', ({ uid }) => opened.push(uid));
    const kept = core.connect();
    const dropped = core.connect();
    kept.receive({ type: 'hello', v: 1, user_id: 'alice', session_id: 's1' });
    dropped.receive({ type: 'hello', v: 1, user_id: 'bob', session_id: 's2' });
    // Presence written: both wait for a slice before their sessions open.
    expect(await slices.pending(2)).toBe(2);
    expect(opened).toEqual([]);
    slices.resumeAll();
    // Open, and waiting for a slice before the welcome.
    expect(await slices.pending(2)).toBe(2);
    expect(opened).toEqual(['alice', 'bob']);
    expect(kept.of('welcome')).toEqual([]);
    dropped.peerClose(1001, 'gone');
    await dropped.closed;
    slices.resumeAll();
    expect((await kept.next('welcome')).session_id).toBe('s1');
    expect(dropped.of('welcome')).toEqual([]);
    await core.handler.settled();
    expect(core.hub.has('bob')).toBe(false);
    expect(await core.presence.sessions('bob')).toEqual([]);
  });

  it('keeps the entry a hello wrote when the older socket of its session id closes while the hello waits for its slice', async () => {
    const slices = manualSlices();
    core = startCore({ detachDelayMs: 60_000 }, { slices });
    async function openWithSlices(socket: ReturnType<typeof core.connect>) {
      while (socket.of('welcome').length === 0) {
        await slices.pending(1);
        slices.resumeAll();
        await new Promise((r) => setImmediate(r));
      }
    }
    const old = core.connect();
    old.receive({ type: 'hello', v: 1, user_id: 'alice', session_id: 's1' });
    await openWithSlices(old);
    // The same tab again: its entry is written, then it waits for a slice; the old socket drops meanwhile.
    const again = core.connect();
    again.receive({ type: 'hello', v: 1, user_id: 'alice', session_id: 's1' });
    expect(await slices.pending(1)).toBe(1);
    old.peerClose(1006, '');
    await old.closed;
    await openWithSlices(again);
    await core.handler.settled();
    expect((await core.presence.sessions('alice')).map((e) => e.sessionId)).toEqual(['s1']);
    // The user never dropped to no session: the old one counts as closed once the new one opened.
    expect(core.listeners.pendingDetaches()).toEqual([]);
    expect(core.listeners.counters().detachCancelled).toBe(0);
    // And a hello that then does not open takes the entry with it, before its predecessor's close settles.
    const third = core.connect();
    third.receive({ type: 'hello', v: 1, user_id: 'alice', session_id: 's1' });
    expect(await slices.pending(1)).toBe(1);
    again.peerClose(1006, '');
    third.peerClose(1006, '');
    await third.closed;
    slices.resumeAll();
    await core.handler.settled();
    expect(await core.presence.sessions('alice')).toEqual([]);
    expect(core.hub.has('alice')).toBe(false);
    expect(core.listeners.pendingDetaches()).toEqual(['alice']);
  });

  it('a hello that gives up after its presence write leaves the entry of a newer hello of the same session id', async () => {
    const slices = manualSlices();
    core = startCore({ detachDelayMs: 60_000 }, { slices });
    const first = core.connect();
    first.receive({ type: 'hello', v: 1, user_id: 'alice', session_id: 's1' });
    expect(await slices.pending(1)).toBe(1); // its entry written, waiting for its slice
    // The tab's socket dies and it reconnects at once: the new hello writes its entry too.
    first.peerClose(1006, '');
    await first.closed;
    const second = core.connect();
    second.receive({ type: 'hello', v: 1, user_id: 'alice', session_id: 's1' });
    expect(await slices.pending(2)).toBe(2);
    while (second.of('welcome').length === 0) {
      slices.resumeAll();
      await new Promise((r) => setImmediate(r));
    }
    await core.handler.settled();
    expect(core.hub.countOf('alice')).toBe(1);
    expect((await core.presence.sessions('alice')).map((e) => e.sessionId)).toEqual(['s1']);
    // And when the newer hello gives up as well, the entry goes with it.
    const third = core.connect();
    third.receive({ type: 'hello', v: 1, user_id: 'alice', session_id: 's2' });
    expect(await slices.pending(1)).toBe(1);
    third.peerClose(1006, '');
    const fourth = core.connect();
    fourth.receive({ type: 'hello', v: 1, user_id: 'alice', session_id: 's2' });
    expect(await slices.pending(2)).toBe(2);
    fourth.peerClose(1006, '');
    slices.resumeAll();
    await fourth.closed;
    await slices.pending(1);
    await core.handler.settled();
    expect((await core.presence.sessions('alice')).map((e) => e.sessionId)).toEqual(['s1']);
  });

  it('a hello that gives up after its presence write leaves the entry of the open session of its id', async () => {
    const slices = manualSlices();
    core = startCore({ detachDelayMs: 60_000 }, { slices });
    const open = core.connect();
    open.receive({ type: 'hello', v: 1, user_id: 'alice', session_id: 's1' });
    while (open.of('welcome').length === 0) {
      await slices.pending(1);
      slices.resumeAll();
      await new Promise((r) => setImmediate(r));
    }
    // The same tab again (its old socket still open here), and this socket dies before it opens.
    const again = core.connect();
    again.receive({ type: 'hello', v: 1, user_id: 'alice', session_id: 's1' });
    expect(await slices.pending(1)).toBe(1);
    again.peerClose(1006, '');
    await again.closed;
    slices.resumeAll();
    await core.handler.settled();
    await new Promise((r) => setImmediate(r));
    expect(open.ended).toBeUndefined();
    expect((await core.presence.sessions('alice')).map((e) => e.sessionId)).toEqual(['s1']);
  });

  it('a session whose registry entry another instance changed while its hello was admitted reads the entry again once open', async () => {
    const slices = manualSlices();
    core = startCore({}, { slices });
    const socket = core.connect();
    socket.receive({ type: 'hello', v: 1, user_id: 'alice', session_id: 's1' });
    // Its presence write done (reading the registry entry as it was: none), it waits for its slice.
    expect(await slices.pending(1)).toBe(1);
    const entry = {
      session_id: 's1',
      route: '/there',
      instance_id: 'gw-other',
      registered_at: '2026-12-07T12:00:00.000Z',
    };
    await core.registry.registerSession('alice', entry);
    core.handler.onRegistration({ type: 'registration', uid: 'alice', session_id: 's1' });
    while (socket.of('welcome').length === 0) {
      slices.resumeAll();
      await new Promise((r) => setImmediate(r));
    }
    await waitFor(() => core.hub.get('alice', 's1')?.registration === JSON.stringify(entry), 'the entry read again');
    // Unregistered there later: the open session forgets it.
    await core.registry.unregisterSession('alice', 's1');
    core.handler.onRegistration({ type: 'registration', uid: 'alice', session_id: 's1' });
    await waitFor(() => core.hub.get('alice', 's1')?.registration === undefined, 'the entry forgotten');
  });

  it('takes the token of an Authorization: Bearer header when the hello has none', async () => {
    core = startCore();
    const socket = core.connect({ headers: { authorization: 'Bearer bob' } });
    const welcome = socket.next('welcome');
    socket.receive({ type: 'hello', v: 1 });
    expect((await welcome).user_id).toBe('bob');
  });

  it('closes 4010 on another protocol version, naming the one it speaks', async () => {
    core = startCore();
    const socket = core.connect();
    socket.receive({ type: 'hello', v: PROTOCOL_VERSION + 1, user_id: 'alice' });
    expect(await socket.closed).toMatchObject({ code: CloseCode.UnsupportedVersion });
    expect(socket.of('error')).toEqual([
      expect.objectContaining({ code: 'bad_frame', issues: [expect.objectContaining({ path: 'v' })] }),
    ]);
    expect(core.hub.has('alice')).toBe(false);
  });

  it('closes 4004 on a frame that does not parse, or a first frame other than hello', async () => {
    core = startCore();
    const garbled = core.connect();
    garbled.receive('{"type":"hello"');
    const rpcFirst = core.connect();
    rpcFirst.receive({ type: 'rpc', id: '1', method: 'REGISTRY.get_sessions', args: ['x'] });
    expect(await garbled.closed).toMatchObject({ code: CloseCode.BadFrame });
    expect(await rpcFirst.closed).toMatchObject({ code: CloseCode.BadFrame });
    expect(rpcFirst.of('error')[0]).toMatchObject({ code: 'bad_frame', message: 'the first frame must be hello' });
  });

  it('closes 4002 when no hello comes within the handshake timeout', async () => {
    core = startCore({ handshakeTimeoutMs: 5 });
    const closes: GatewayHookEvents['session.close'][] = [];
    core.hooks.on('session.close', (e) => closes.push(e));
    const socket = core.connect();
    expect(await socket.closed).toMatchObject({ code: CloseCode.AuthTimeout, reason: 'auth timeout' });
    expect(closes).toEqual([
      { code: CloseCode.AuthTimeout, reason: 'auth timeout', type: 'auth_timeout', authenticated: false },
    ]);
    expect(core.handler.count).toBe(0);
  });

  it('closes 4002 when the token check is still running at the handshake timeout', async () => {
    const never = new Promise<never>(() => {});
    core = startCore({ handshakeTimeoutMs: 5 }, { auth: { authenticate: () => never } as never });
    const socket = core.connect();
    socket.receive({ type: 'hello', v: 1, user_id: 'alice' });
    expect(await socket.closed).toMatchObject({ code: CloseCode.AuthTimeout, reason: 'auth timeout' });
  });

  it('closes 1013 when its presence write has not answered by the handshake timeout (a Redis node frozen), and takes back the entry written later', async () => {
    const { logger, lines } = recordingLogger();
    core = startCore({ handshakeTimeoutMs: 20 }, { logger });
    const presence = core.presence;
    const add = presence.add.bind(presence);
    const held = heldAnswer();
    presence.add = async (...args) => {
      await held.promise;
      return add(...args);
    };
    const { socket, closes } = await helloClosed(core, CloseCode.TryAgainLater, 'try again later');
    expect(closes).toEqual([
      { code: CloseCode.TryAgainLater, reason: 'try again later', type: 'try_again_later', authenticated: false },
    ]);
    // The user is named (its keys tell which Redis node did not answer).
    expect(lines).toEqual([stalledLine('presence')]);
    // The node answers at last: the entry the hello wrote is taken back, no session opened.
    held.answer();
    await core.handler.settled();
    await new Promise((resolve) => setImmediate(resolve));
    expect(await core.presence.sessions('alice')).toEqual([]);
    expect(core.hub.has('alice')).toBe(false);
    expect(socket.of('welcome')).toEqual([]);
  });

  it('closes 1013 when its presence write fails, and takes back the entry in case the write was done (its reply lost with the connection)', async () => {
    const { logger, lines } = recordingLogger();
    core = startCore({}, { logger });
    const presence = core.presence;
    const add = presence.add.bind(presence);
    presence.add = async (...args) => {
      await add(...args);
      throw new Error('Connection is closed.');
    };
    await helloClosed(core, CloseCode.TryAgainLater, 'try again later');
    expect(lines).toEqual([
      {
        level: 'warn',
        event: 'presence_error',
        fields: { uid: 'alice', session_id: 's1', op: 'add', error: 'Error: Connection is closed.' },
      },
    ]);
    await waitFor(async () => (await presence.sessions('alice')).length === 0, 'the entry taken back');
    expect(core.hub.has('alice')).toBe(false);
  });

  it('says once that a presence write failed with Redis away: the take-back that fails too is not logged as news', async () => {
    const { logger, lines } = recordingLogger();
    core = startCore({}, { logger });
    const away = new Error('Connection is closed.');
    let removes = 0;
    core.presence.add = async () => {
      throw away;
    };
    core.presence.remove = async () => {
      removes++;
      throw away;
    };
    await helloClosed(core, CloseCode.TryAgainLater, 'try again later');
    await waitFor(() => removes === 1, 'the take-back tried');
    await new Promise((resolve) => setImmediate(resolve));
    expect(lines.map((l) => [l.event, l.fields?.op])).toEqual([['presence_error', 'add']]);
  });

  it('closes 1013 a session whose stream subscription has not answered by the handshake timeout: no welcome, nothing left behind', async () => {
    const bus = new MemoryEventBus();
    const held = heldAnswer();
    bus.listen = async () => held.promise;
    const { logger, lines } = recordingLogger();
    core = startCore({ handshakeTimeoutMs: 20 }, { bus, logger });
    const { socket, closes } = await helloClosed(core, CloseCode.TryAgainLater, 'try again later');
    expect(closes).toEqual([
      {
        uid: 'alice',
        sessionId: 's1',
        code: CloseCode.TryAgainLater,
        reason: 'try again later',
        type: 'try_again_later',
        authenticated: true,
      },
    ]);
    // The subscription fails at last (the bus gave up on the node): the session is gone already,
    // nothing more to log.
    held.fail(new Error('subscribe timed out'));
    await core.handler.settled();
    await new Promise((resolve) => setImmediate(resolve));
    expect(lines).toEqual([stalledLine('stream')]);
    expect(socket.of('welcome')).toEqual([]);
    expect(core.hub.has('alice')).toBe(false);
    expect(await core.presence.sessions('alice')).toEqual([]);
  });

  it('says nothing at the handshake timeout of a hello it closed already for a reason of its own (the peer not yet answering the close)', async () => {
    jest.useFakeTimers({ doNotFake: ['setImmediate', 'queueMicrotask', 'nextTick'] });
    try {
      const { logger, lines } = recordingLogger();
      core = startCore({ handshakeTimeoutMs: 20 }, { logger });
      core.presence.add = async () => {
        throw new Error('READONLY');
      };
      const socket = core.connect();
      const closes = peerNotAnsweringClose(socket);
      socket.receive({ type: 'hello', v: 1, user_id: 'alice', session_id: 's1' });
      for (let turn = 0; turn < 100 && closes.length === 0; turn++) await new Promise((r) => setImmediate(r));
      expect(closes).toEqual([CloseCode.TryAgainLater]);
      jest.advanceTimersByTime(100); // past the handshake timeout
      expect(closes).toEqual([CloseCode.TryAgainLater]);
      expect(lines.map((l) => l.event)).toEqual(['presence_error']);
    } finally {
      jest.useRealTimers();
    }
  });

  it('logs nothing more when the subscription fails while the 1013 close waits for its peer', async () => {
    const bus = new MemoryEventBus();
    const held = heldAnswer();
    bus.listen = async () => held.promise;
    const { logger, lines } = recordingLogger();
    core = startCore({ handshakeTimeoutMs: 20 }, { bus, logger });
    const socket = core.connect();
    const closes = peerNotAnsweringClose(socket);
    socket.receive({ type: 'hello', v: 1, user_id: 'alice', session_id: 's1' });
    await waitFor(() => closes.length > 0, 'the 1013 close');
    held.fail(Object.assign(new Error('no answer within 5000 ms'), { code: 'ETIMEDOUT' }));
    for (let turn = 0; turn < 10; turn++) await new Promise((resolve) => setImmediate(resolve));
    expect(closes).toEqual([CloseCode.TryAgainLater]);
    expect(lines.map((l) => l.event)).toEqual(['handshake_stalled']);
  });

  it('names the event loop, not Redis, when a hello waited for its turn past the handshake timeout', async () => {
    const slices = manualSlices();
    const { logger, lines } = recordingLogger();
    core = startCore({ handshakeTimeoutMs: 20 }, { slices, logger });
    const { socket } = await helloClosed(core, CloseCode.TryAgainLater, 'try again later');
    expect(await slices.pending(1)).toBe(1);
    expect(lines).toEqual([stalledLine('turn')]);
    slices.resumeAll();
    // The hello gives up at its turn: the entry it wrote is taken back, no welcome.
    await waitFor(
      async () => (await core.presence.sessions('alice')).length === 0,
      "the stalled hello's entry taken back",
    );
    expect(socket.of('welcome')).toEqual([]);
  });

  it('keeps a session whose welcome went out in time open past the handshake timeout', async () => {
    jest.useFakeTimers({ doNotFake: ['setImmediate', 'queueMicrotask', 'nextTick'] });
    try {
      core = startCore({ handshakeTimeoutMs: 20 });
      const { socket } = await core.open('alice');
      jest.advanceTimersByTime(100);
      await new Promise((resolve) => setImmediate(resolve));
      expect(socket.ended).toBeUndefined();
    } finally {
      jest.useRealTimers();
    }
  });

  it('closes 4001 with the auth failure code as its reason when the token is refused (hook session.auth_failed)', async () => {
    core = startCore();
    const failed = core.hooks.next('session.auth_failed');
    const socket = core.connect();
    socket.receive({ type: 'hello', v: 1 }); // AUTH_MODE=none: no user named
    expect(await socket.closed).toMatchObject({ code: CloseCode.AuthFailed, reason: 'missing_token' });
    await expect(failed).resolves.toMatchObject({ reason: 'missing', code: 'missing_token' });
    expect(socket.of('welcome')).toEqual([]);
  });

  it('closes 1012 when the instance started draining while the token was checked', async () => {
    let draining = false;
    core = startCore({}, { isDraining: () => draining });
    const socket = core.connect();
    draining = true;
    socket.receive({ type: 'hello', v: 1, user_id: 'alice' });
    expect(await socket.closed).toMatchObject({ code: CloseCode.ServiceRestart });
    expect(core.hub.has('alice')).toBe(false);
  });

  it('closes 4006 past the session limit, counted in presence', async () => {
    core = startCore({ maxSessionsPerUser: 1 });
    await core.open('alice', { session_id: 'a' });
    const second = core.connect();
    second.receive({ type: 'hello', v: 1, user_id: 'alice', session_id: 'b' });
    expect(await second.closed).toMatchObject({ code: CloseCode.TooManySessions });
  });

  it('undoes the subscription a refused hello started: a user at the limit elsewhere keeps no stream here', async () => {
    core = startCore({ maxSessionsPerUser: 1 });
    // The user's one session is on another instance.
    await core.presence.add('alice', { sessionId: 'a', instanceId: 'gw-other', route: '', connectedAt: 1 });
    const refused = core.connect();
    refused.receive({ type: 'hello', v: 1, user_id: 'alice', session_id: 'b' });
    expect(await refused.closed).toMatchObject({ code: CloseCode.TooManySessions });
    await new Promise((resolve) => setImmediate(resolve));
    expect(core.hub.has('alice')).toBe(false);
    expect(core.bus.stats().streams).toBe(0);
    // Once the other session left, the user opens here and hears its events.
    await core.presence.remove('alice', 'a', 'gw-other');
    const { socket } = await core.open('alice', { session_id: 'b' });
    await core.bus.publish('alice', { event: 'session.notice', data: { level: 'info', message: 'hi' } });
    expect(socket.of('event').map((f) => f.event)).toEqual(['session.notice']);
  });

  it('handles frames pipelined behind the hello once the welcome is out, in order', async () => {
    core = startCore();
    const socket = core.connect();
    socket.receive({ type: 'hello', v: 1, user_id: 'alice' });
    socket.receive({ type: 'ping', ts: 1 });
    socket.receive({ type: 'ping', ts: 2 });
    await socket.next('pong');
    await socket.next('pong', { seen: true });
    const types = socket.sent.map((f) => f.type);
    expect(types.indexOf('welcome')).toBeLessThan(types.indexOf('pong'));
    expect(socket.of('pong').map((f) => f.ts)).toEqual([1, 2]);
  });

  it('holds the frames that arrive after the session opened but before its welcome: nothing is answered before it, all in order after', async () => {
    const slices = manualSlices();
    core = startCore({}, { slices });
    const socket = core.connect();
    socket.receive({ type: 'hello', v: 1, user_id: 'alice' });
    socket.receive({ type: 'ping', ts: 1 });
    expect(await slices.pending(1)).toBe(1);
    slices.resumeAll();
    // Open (session.open), and waiting for its slice before the welcome.
    expect(await slices.pending(1)).toBe(1);
    expect(core.hub.has('alice')).toBe(true);
    socket.receive({ type: 'ping', ts: 2 });
    socket.receive({ type: 'rpc', id: 7, method: 'NO.such_method', args: [] });
    for (let turn = 0; turn < 10; turn++) await new Promise((r) => setImmediate(r));
    expect(socket.sent).toEqual([]);
    slices.resumeAll();
    await socket.next('rpc_error', { seen: true });
    expect(socket.sent.map((f) => f.type)).toEqual(['welcome', 'pong', 'pong', 'rpc_error']);
    expect(socket.of('pong').map((f) => f.ts)).toEqual([1, 2]);
  });

  it('closes 4008 a session whose re-announce finds it held by another instance (the message to close it was lost)', async () => {
    core = startCore();
    const { socket } = await core.open('alice', { session_id: 's' });
    const kept = await core.open('alice', { session_id: 'other' });
    // Another instance took the session over without this one hearing of it.
    await core.presence.add('alice', { sessionId: 's', instanceId: 'gw-b', route: '/', connectedAt: Date.now() });
    await core.handler.reannounce('alice');
    expect(await socket.closed).toMatchObject({ code: CloseCode.Replaced });
    expect(kept.socket.ended).toBeUndefined();
  });

  it('a reconnect with the same session id replaces the old socket (4008)', async () => {
    core = startCore();
    const first = await core.open('alice', { session_id: 's' });
    await core.open('alice', { session_id: 's' });
    expect(await first.socket.closed).toMatchObject({ code: CloseCode.Replaced });
    expect(core.hub.countOf('alice')).toBe(1);
  });
});
