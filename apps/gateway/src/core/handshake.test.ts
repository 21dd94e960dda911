import { CloseCode, PROTOCOL_VERSION } from '@livebus/protocol';
import type { GatewayHookEvents } from '../hooks';
import { startCore } from './core-harness';

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

  it('a reconnect with the same session id replaces the old socket (4008)', async () => {
    core = startCore();
    const first = await core.open('alice', { session_id: 's' });
    await core.open('alice', { session_id: 's' });
    expect(await first.socket.closed).toMatchObject({ code: CloseCode.Replaced });
    expect(core.hub.countOf('alice')).toBe(1);
  });
});
