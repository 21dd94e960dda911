import { CloseCode } from '@livebus/protocol';
import { quietLogger, startCore } from './core-harness';

describe('frame dispatch', () => {
  let core: ReturnType<typeof startCore>;
  afterEach(() => core.stop());

  it('answers an rpc with its result, and a failing one with its error, by id', async () => {
    core = startCore();
    const { socket } = await core.open('alice', { session_id: 's1' });
    socket.receive({ type: 'rpc', id: 'ok', method: 'REGISTRY.get_sessions', args: ['alice'] });
    const result = await socket.next('rpc_result');
    expect(result).toMatchObject({ id: 'ok' });
    socket.receive({ type: 'rpc', id: 'other', method: 'REGISTRY.get_sessions', args: ['bob'] });
    socket.receive({ type: 'rpc', id: 'none', method: 'NO.such', args: [] });
    await socket.next('rpc_error');
    await socket.next('rpc_error', { seen: true });
    const errors = Object.fromEntries(socket.of('rpc_error').map((f) => [f.id, (f.error as { code: string }).code]));
    expect(errors).toEqual({ other: 'forbidden', none: 'unknown_method' });
    expect(socket.ended).toBeUndefined();
  });

  it('answers ping with pong echoing ts, and takes pong silently', async () => {
    core = startCore();
    const { socket } = await core.open('alice');
    socket.receive({ type: 'pong' });
    socket.receive({ type: 'ping', ts: 42 });
    socket.receive({ type: 'ping' });
    expect(socket.of('pong')).toEqual([{ type: 'pong', ts: 42 }, { type: 'pong' }]);
  });

  it('after the handshake, reports a bad frame or a second hello and keeps the session', async () => {
    core = startCore();
    const { socket } = await core.open('alice');
    socket.receive('not json');
    socket.receive({ type: 'hello', v: 1, user_id: 'alice' });
    expect(socket.of('error').map((f) => f.code)).toEqual(['bad_frame', 'bad_frame']);
    expect(socket.of('error')[1]?.message).toBe('hello was already received');
    socket.receive({ type: 'ping', ts: 1 });
    expect(socket.of('pong')).toHaveLength(1);
    expect(socket.ended).toBeUndefined();
  });

  it('answers a malformed call by its id (invalid_params, with the issues), not with an error frame the call never hears', async () => {
    core = startCore();
    const { socket } = await core.open('alice');
    socket.receive({ type: 'rpc', id: 9, method: 'REGISTRY.get_sessions', args: 'alice' });
    socket.receive({ type: 'rpc', id: 'c-10', method: 'REGISTRY.get_sessions', args: ['alice'], extra: true });
    expect(socket.of('rpc_error')).toEqual([
      expect.objectContaining({ id: 9, error: expect.objectContaining({ code: 'invalid_params' }) }),
      expect.objectContaining({ id: 'c-10', error: expect.objectContaining({ code: 'invalid_params' }) }),
    ]);
    expect(socket.of('rpc_error')[0]).toMatchObject({ error: { data: { issues: [expect.anything()] } } });
    // Without a usable id it stays a frame error.
    socket.receive({ type: 'rpc', id: -1, method: 'REGISTRY.get_sessions', args: 'alice' });
    expect(socket.of('error').map((f) => f.code)).toEqual(['bad_frame']);
    expect(socket.ended).toBeUndefined();
  });

  it('closes 4007 a client that keeps sending but does not read: its answers are not queued behind what it has not read', async () => {
    core = startCore({ maxBufferedBytes: 1_000 });
    const closes: string[] = [];
    core.hooks.on('session.close', ({ type }) => closes.push(type));
    const { socket } = await core.open('alice', { session_id: 's1' });
    // A call in flight when the client stops reading: answered with a close, not a result.
    socket.receive({ type: 'rpc', id: 'late', method: 'REGISTRY.get_sessions', args: ['alice'] });
    socket.bufferedAmount = 1_001;
    expect(await socket.closed).toMatchObject({ code: CloseCode.SlowConsumer, reason: 'slow consumer' });
    expect(socket.of('rpc_result')).toEqual([]);
    expect(closes).toEqual(['slow_consumer']);

    // A frame that arrives while the buffer is full is not answered either.
    const { socket: other } = await core.open('bob', { session_id: 's2' });
    other.bufferedAmount = 1_001;
    other.receive({ type: 'ping', ts: 1 });
    expect(await other.closed).toMatchObject({ code: CloseCode.SlowConsumer });
    expect(other.of('pong')).toEqual([]);
  });

  it('answers internal, logs it, and keeps the session, a call whose result a frame cannot carry', async () => {
    // A handler's object with an optional field left undefined passes its method's schema but is not JSON.
    const errors: Array<[string, Record<string, unknown> | undefined]> = [];
    const logger = {
      ...quietLogger,
      error: (event: string, fields?: Record<string, unknown>) => errors.push([event, fields]),
    };
    core = startCore({}, { dispatch: async () => ({ kept: 1, missing: undefined }), logger });
    const { socket } = await core.open('alice');
    socket.receive({ type: 'rpc', id: 'odd', method: 'REGISTRY.get_sessions', args: ['alice'] });
    expect(await socket.next('rpc_error')).toMatchObject({ id: 'odd', error: { code: 'internal' } });
    socket.receive({ type: 'ping', ts: 7 });
    expect(socket.of('pong')).toEqual([{ type: 'pong', ts: 7 }]);
    expect(socket.ended).toBeUndefined();
    expect(errors).toEqual([
      ['rpc_error', { method: 'REGISTRY.get_sessions', error: expect.stringMatching(/invalid frame/) }],
    ]);
  });

  it('closes 1003 on a binary frame', async () => {
    core = startCore();
    const { socket } = await core.open('alice');
    socket.receive({ type: 'ping' }, true);
    expect(await socket.closed).toMatchObject({ code: CloseCode.UnsupportedData });
  });

  it('reads nothing a peer sends once its connection is closing: no frame of a closing handshake slips past the limiter', async () => {
    core = startCore({ rateLimitFramesPerS: 1, rateLimitBurst: 3 });
    const authFailures: unknown[] = [];
    core.hooks.on('session.auth_failed', (e) => authFailures.push(e));
    const socket = core.connect();
    // A first frame that is not a hello closes the connection; a peer that ignores the close
    // keeps sending, here hellos whose check would fail (no user named) if one were read.
    socket.receive({ type: 'ping' });
    for (let i = 0; i < 50; i++) socket.receive({ type: 'hello', v: 1 });
    expect((await socket.closed).code).toBe(CloseCode.BadFrame);
    expect(authFailures).toEqual([]);
  });

  it('drops frames over the rate limit with one rate_limited error, and closes 4005 a client that keeps flooding', async () => {
    core = startCore({ rateLimitFramesPerS: 1, rateLimitBurst: 3 });
    const closes = core.hooks.next('session.close');
    const { socket } = await core.open('alice'); // the hello takes no token
    for (let i = 0; i < 6; i++) socket.receive({ type: 'ping', ts: i });
    expect(await socket.closed).toMatchObject({ code: CloseCode.RateLimited });
    expect(socket.of('error').map((f) => f.code)).toEqual(['rate_limited']);
    expect(socket.of('pong')).toHaveLength(3); // the burst of 3
    await expect(closes).resolves.toMatchObject({ type: 'rate_limited', authenticated: true });
  });

  it('counts frames pipelined behind the hello once, when they are handled after the welcome: within the burst all answered, past it refused after the welcome', async () => {
    core = startCore({ rateLimitFramesPerS: 1, rateLimitBurst: 3 });
    const within = core.connect();
    within.receive({ type: 'hello', v: 1, user_id: 'alice' });
    for (let i = 0; i < 3; i++) within.receive({ type: 'ping', ts: i });
    await within.next('welcome');
    for (let turn = 0; turn < 5; turn++) await new Promise((r) => setImmediate(r));
    expect(within.sent.map((f) => f.type)).toEqual(['welcome', 'pong', 'pong', 'pong']);

    const past = core.connect();
    past.receive({ type: 'hello', v: 1, user_id: 'bob' });
    for (let i = 0; i < 5; i++) past.receive({ type: 'ping', ts: i });
    await past.next('welcome');
    for (let turn = 0; turn < 5; turn++) await new Promise((r) => setImmediate(r));
    expect(past.sent.map((f) => f.type)).toEqual(['welcome', 'pong', 'pong', 'pong', 'error']);
    expect(past.of('error')[0]?.code).toBe('rate_limited');
  });

  describe('with a clock of the test (only Date is faked)', () => {
    const start = Date.parse('2026-01-01T00:00:00Z');
    beforeEach(() => {
      jest.useFakeTimers({
        now: start,
        doNotFake: [
          'hrtime',
          'nextTick',
          'performance',
          'queueMicrotask',
          'setImmediate',
          'clearImmediate',
          'setInterval',
          'clearInterval',
          'setTimeout',
          'clearTimeout',
        ],
      });
    });
    afterEach(() => jest.useRealTimers());

    it('answers a call over the limit rate_limited by its id, and closes 4005 a client that keeps sending at twice the rate though every other frame gets through', async () => {
      core = startCore({ rateLimitFramesPerS: 10, rateLimitBurst: 5 });
      const { socket } = await core.open('alice');
      for (let i = 0; i < 5; i++) socket.receive({ type: 'ping', ts: i }); // the burst
      socket.receive({ type: 'rpc', id: 41, method: 'REGISTRY.get_sessions', args: ['alice'] });
      expect(socket.of('rpc_error')).toEqual([
        { type: 'rpc_error', id: 41, error: { code: 'rate_limited', message: 'too many frames; slow down' } },
      ]);
      // 20 frames a second against a rate of 10: one in two gets through, the refusals add up.
      for (let i = 0; i < 20 && !socket.ended; i++) {
        jest.setSystemTime(start + 50 * (i + 1));
        socket.receive({ type: 'ping', ts: 100 + i });
      }
      expect(await socket.closed).toMatchObject({ code: CloseCode.RateLimited });
      // The flood's first refusal was the call, told by its own answer: no `error` frame besides.
      expect(socket.of('error')).toEqual([]);
    });

    it('forgives a flood once the client slowed down until its bucket refilled', async () => {
      core = startCore({ rateLimitFramesPerS: 10, rateLimitBurst: 5 });
      const { socket } = await core.open('alice');
      for (let round = 0; round < 3; round++) {
        // A burst and four frames over it, then quiet long enough to refill.
        for (let i = 0; i < 9; i++) socket.receive({ type: 'ping', ts: i });
        jest.setSystemTime(start + 1_000 * (round + 1));
      }
      socket.receive({ type: 'ping', ts: 99 });
      await socket.next('pong', { seen: true });
      expect(socket.ended).toBeUndefined();
      expect(socket.of('error').map((f) => f.code)).toEqual(['rate_limited', 'rate_limited', 'rate_limited']);
    });
  });
});
