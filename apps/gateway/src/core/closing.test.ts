import { CloseCode } from '@livebus/protocol';
import { MemoryEventBus } from '../fleet/bus/memory-event-bus';
import type { GatewayHookEvents } from '../hooks';
import { startCore } from './core-harness';

type Close = GatewayHookEvents['session.close'];

describe('close paths and bookkeeping', () => {
  let core: ReturnType<typeof startCore>;
  let closes: Close[];
  beforeEach(() => {
    closes = [];
  });
  afterEach(() => core.stop());
  const start = (...args: Parameters<typeof startCore>) => {
    core = startCore(...args);
    core.hooks.on('session.close', (e) => closes.push(e));
    return core;
  };

  it('cleans up the departure of a session whose presence remove failed (Redis away as it closed): its own left entry does not keep the user present', async () => {
    start();
    const { socket } = await core.open('alice', { session_id: 's1' });
    jest.spyOn(core.presence, 'remove').mockRejectedValueOnce(new Error('redis away'));
    socket.peerClose(1000, 'bye');
    await socket.closed;
    await core.handler.settled();
    await core.listeners.flush();
    expect(core.listeners.counters()).toMatchObject({ cleanups: 1, cleanupsSkipped: 0 });
    expect(await core.presence.sessions('alice')).toEqual([]);
  });

  it('a peer close: counted once by reason, the session leaves the hub, presence, then the listeners', async () => {
    start();
    const { socket, welcome } = await core.open('alice', { session_id: 's1' });
    socket.peerClose(1000, 'bye');
    await socket.closed;
    await core.handler.settled();
    expect(closes).toEqual([
      { uid: 'alice', sessionId: 's1', code: 1000, reason: 'bye', type: 'normal_closure', authenticated: true },
    ]);
    expect(welcome.session_id).toBe('s1');
    expect(core.hub.has('alice')).toBe(false);
    expect(await core.presence.sessions('alice')).toEqual([]);
    expect(core.handler.count).toBe(0);
    const disconnects = await core.metrics.disconnects.get();
    expect(disconnects.values.find((v) => v.labels.reason === 'normal_closure')?.value).toBe(1);
  });

  it("a session whose user's subscription fails after it opened closes 1011 (1013 with Redis away) and leaves presence, then the listeners", async () => {
    // A bus whose subscriptions fail when the test says (the stream head lost to a Redis restart).
    let failSubscription: (error: Error) => void = () => {};
    const bus = new MemoryEventBus();
    bus.listen = () => new Promise<void>((_, reject) => (failSubscription = reject));
    start({ detachDelayMs: 60_000 }, { bus });
    const socket = core.connect();
    const opened = core.hooks.next('session.open');
    socket.receive({ type: 'hello', v: 1, user_id: 'alice', session_id: 's1' });
    await opened;
    failSubscription(new Error('WRONGTYPE Operation against a key holding the wrong kind of value'));
    expect(await socket.closed).toMatchObject({ code: CloseCode.InternalError });
    await core.handler.settled();
    expect(closes).toEqual([expect.objectContaining({ uid: 'alice', sessionId: 's1', type: 'server_error' })]);
    expect(core.hub.has('alice')).toBe(false);
    expect(await core.presence.sessions('alice')).toEqual([]);
    // The user's last session here closed: the detach delay started.
    expect(core.listeners.pendingDetaches()).toEqual(['alice']);
    // Redis away (its retries given up): try again later, not a server error.
    const second = core.connect();
    second.receive({ type: 'hello', v: 1, user_id: 'bob', session_id: 's2' });
    await core.hooks.next('session.open');
    failSubscription(Object.assign(new Error('no answer within 5000 ms'), { code: 'ETIMEDOUT' }));
    expect(await second.closed).toMatchObject({ code: CloseCode.TryAgainLater });
    await core.handler.settled();
    expect(closes.at(-1)).toEqual(expect.objectContaining({ uid: 'bob', type: 'try_again_later' }));
  });

  it('the heartbeat pings live sockets (and app-ping clients by frame) and terminates silent ones as ping_timeout', async () => {
    start({ pingTimeoutMs: 20 });
    const silent = await core.open('alice');
    const live = await core.open('bob', { app_ping: true });
    await new Promise((resolve) => setTimeout(resolve, 40)); // silent past the ping timeout
    live.socket.pong();
    core.handler.heartbeat();
    expect(await silent.socket.closed).toMatchObject({ terminated: true });
    expect(live.socket.pings).toBe(1);
    expect(live.socket.of('ping')).toHaveLength(1);
    expect(live.socket.ended).toBeUndefined();
    expect(closes).toEqual([expect.objectContaining({ uid: 'alice', code: 1006, type: 'ping_timeout' })]);
  });

  it('shutdown: a shutting_down notice with a reconnect hint, then 1012 to every connection', async () => {
    start();
    const { socket } = await core.open('alice');
    const waiting = core.connect();
    core.handler.closeAll(1_000);
    expect(await socket.closed).toMatchObject({ code: CloseCode.ServiceRestart });
    expect(await waiting.closed).toMatchObject({ code: CloseCode.ServiceRestart });
    const notice = socket.of('notice')[0];
    expect(notice).toMatchObject({ kind: 'shutting_down' });
    // A jittered hint within the spread given.
    const hint = Number(notice?.reconnect_after_ms);
    expect(Number.isInteger(hint) && hint >= 0 && hint < 1_000).toBe(true);
    expect(closes.map((c) => c.type)).toEqual(['service_restart', 'service_restart']);
    core.connect();
    core.handler.terminateAll();
    await core.handler.settled();
    expect(core.handler.count).toBe(0);
  });

  it('shutdown: a session dropped at the end (its peer never answered the close) has left presence and reached the listeners once settled() resolves', async () => {
    start({ detachDelayMs: 60_000 });
    const { socket } = await core.open('alice', { session_id: 's1' });
    // The peer does not answer the close, and a dropped socket's close event comes a turn later, as ws's does.
    socket.close = () => {};
    const drop = socket.terminate.bind(socket);
    socket.terminate = () => setImmediate(drop);
    core.handler.closeAll(1_000);
    core.handler.terminateAll();
    await core.handler.settled();
    expect(core.handler.count).toBe(0);
    expect(await core.presence.sessions('alice')).toEqual([]);
    expect(core.listeners.pendingDetaches()).toEqual(['alice']);
    expect(closes).toEqual([expect.objectContaining({ uid: 'alice', code: 1006, type: 'service_restart' })]);
    await socket.closed;
    expect(closes).toHaveLength(1);
  });

  it('another instance took the session over: the socket here closes 4008 (replaced)', async () => {
    start();
    const { socket } = await core.open('alice', { session_id: 's1' });
    core.handler.onControl({ type: 'replace', uid: 'alice', session_id: 's1' });
    expect(await socket.closed).toMatchObject({ code: CloseCode.Replaced });
    expect(closes).toEqual([expect.objectContaining({ type: 'replaced', authenticated: true })]);
  });

  it('a handler that throws closes only its own socket, with 1011', async () => {
    start();
    const bystander = await core.open('bob');
    core.hooks.on(
      'session.open',
      (e) => {
        if (e.uid === 'boom') throw new Error('injected');
      },
      { propagate: true },
    );
    const socket = core.connect();
    socket.receive({ type: 'hello', v: 1, user_id: 'boom' });
    expect(await socket.closed).toMatchObject({ code: CloseCode.InternalError });
    bystander.socket.receive({ type: 'ping', ts: 1 });
    expect(bystander.socket.of('pong')).toHaveLength(1);
  });
});
