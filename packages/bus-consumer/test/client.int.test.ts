import { createServer, type Server } from 'node:net';
import { JwtAuthenticator, signJwt } from '@livebus/gateway';
import { CloseCode } from '@livebus/protocol';
import { startTcpProxy, type TcpProxy, waitFor } from '@livebus/test-support';
import { BusConsumer, consumerDefaults, FatalCloseError, RpcError } from '../src/index';
import { type GatewayHandle, numbered, startGateway, waitOpen } from './helpers';

const fast = { minReconnectDelayMs: 20, maxReconnectDelayMs: 100 };
const clients: BusConsumer[] = [];
const track = (c: BusConsumer) => {
  clients.push(c);
  c.onClient('error', () => {});
  return c;
};
afterEach(() => {
  for (const c of clients.splice(0)) c.close();
});

describe('defaults', () => {
  it('pings every 20 s and declares the peer dead after 60 s', () => {
    const c = new BusConsumer({ url: 'ws://127.0.0.1:1/ws' });
    expect(c.options.pingIntervalMs).toBe(20_000);
    expect(c.options.pingTimeoutMs).toBe(60_000);
    expect(consumerDefaults).toMatchObject({ pingIntervalMs: 20_000, pingTimeoutMs: 60_000 });
    expect(c.state).toBe('idle');
  });

  it('refuses contradictory options', () => {
    expect(() => new BusConsumer({ url: 'ws://x/ws', pingIntervalMs: 1_000, pingTimeoutMs: 500 })).toThrow(TypeError);
    expect(() => new BusConsumer({ url: 'ws://x/ws', minReconnectDelayMs: 10, maxReconnectDelayMs: 5 })).toThrow(
      TypeError,
    );
  });
});

describe('against a real gateway', () => {
  let g: GatewayHandle;
  let proxy: TcpProxy;
  beforeAll(async () => {
    g = await startGateway();
  });
  afterAll(() => g.stop());
  beforeEach(async () => {
    proxy = await startTcpProxy(g.port);
  });
  afterEach(() => proxy.close());
  const viaProxy = () => `ws://127.0.0.1:${proxy.port}/ws`;

  it('delivers every event exactly once and in order across a network cut', async () => {
    const c = track(new BusConsumer({ url: viaProxy(), userId: 'resume-user', ...fast }));
    const got: number[] = [];
    c.on('session.notice', (data) => got.push(Number(data.message)));
    await c.connect();
    const total = 300;
    for (let i = 1; i <= total; i++) {
      await g.gw.publish('resume-user', numbered(i));
      // Cut twice while publishing continues; the second cut hits the resumed connection.
      if (i === 100) proxy.dropAll();
      if (i === 200) {
        await waitOpen(c);
        proxy.dropAll();
      }
      if (i % 10 === 0) await new Promise((r) => setTimeout(r, 2));
    }
    await waitFor(() => got.length >= total, `${total} events`, 10_000);
    await new Promise((r) => setTimeout(r, 50));
    expect(got).toEqual(Array.from({ length: total }, (_, i) => i + 1));
    expect(c.counters.reconnects).toBeGreaterThanOrEqual(2);
    expect(c.counters.lastCloseReason).toBe('abnormal_closure');
  });

  it('declares a silent peer dead after the ping timeout and reconnects', async () => {
    const c = track(
      new BusConsumer({ url: viaProxy(), userId: 'dead-peer', pingIntervalMs: 100, pingTimeoutMs: 400, ...fast }),
    );
    await c.connect();
    const closed = new Promise<{ reason: string }>((resolve) => c.onClient('close', resolve));
    proxy.freeze();
    // When exactly is checked on fake timers in src/heartbeat.test.ts.
    expect((await closed).reason).toBe('ping_timeout');
    proxy.thaw();
    proxy.dropAll();
    await waitOpen(c);
    expect(c.counters.reconnects).toBe(1);
  });

  it('rpc: typed results, typed errors, timeouts', async () => {
    const c = track(new BusConsumer({ url: viaProxy(), userId: 'rpc-user', rpcTimeoutMs: 300, ...fast }));
    await c.connect();
    const reg = await c.rpc('REGISTRY.register_user', 'rpc-user', 'tab-1', '/inbox');
    expect(reg).toMatchObject({ success: true, session_id: 'tab-1', route: '/inbox' });
    const sessions = await c.rpc('REGISTRY.get_sessions', 'rpc-user');
    expect(sessions.sessions.map((s) => s.session_id)).toEqual(['tab-1']);

    const forbidden = await c.rpc('REGISTRY.get_sessions', 'someone-else').catch((e: unknown) => e);
    expect(forbidden).toBeInstanceOf(RpcError);
    expect(forbidden).toMatchObject({ code: 'forbidden' });
    const unavailable = await c.rpc('UNIFIED_REGISTRY.get_user_registry', 'rpc-user').catch((e: unknown) => e);
    expect(unavailable).toMatchObject({ code: 'unavailable' });

    proxy.freeze();
    const timedOut = await c.rpc('REGISTRY.get_sessions', 'rpc-user').catch((e: unknown) => e);
    expect(timedOut).toMatchObject({ name: 'RpcError', code: 'timeout' });
    expect(c.counters.rpc).toMatchObject({ ok: 2, timeout: 1 });
  });

  it('rpc: queued while reconnecting, then sent; or failing fast when asked to', async () => {
    // A fixed reconnect delay: full jitter could pick ~0 ms and skip the window this test needs.
    const c = track(new BusConsumer({ url: viaProxy(), userId: 'queue-user', backoff: () => 300 }));
    await c.connect();
    proxy.dropAll();
    await waitFor(() => c.state === 'reconnecting', 'reconnecting');
    const queued = c.rpc('REGISTRY.register_user', 'queue-user', 'tab-q', '/');
    await expect(queued).resolves.toMatchObject({ success: true, session_id: 'tab-q' });
    expect(c.counters.reconnects).toBe(1);

    const failFast = track(new BusConsumer({ url: viaProxy(), userId: 'queue-user', whileDisconnected: 'fail' }));
    await expect(failFast.rpc('REGISTRY.get_sessions', 'queue-user')).rejects.toMatchObject({ code: 'unavailable' });
  });

  it('grouped handlers: three events within the window arrive as one batch of three', async () => {
    const c = track(new BusConsumer({ url: viaProxy(), userId: 'group-user', ...fast }));
    const batches: string[][] = [];
    const singles: string[] = [];
    c.on('task.progress_update', (batch) => batches.push(batch.map((e) => `${e.data.task_id}:${e.data.progress}`)), {
      groupWindowMs: 150,
      groupBy: (e) => e.data.task_id,
    });
    c.on('task.progress_update', (data) => singles.push(data.task_id));
    await c.connect();
    for (const progress of [10, 20, 30]) {
      await g.gw.publish('group-user', {
        event: 'task.progress_update',
        data: { task_id: 'a', status: 'running', progress },
      });
    }
    await g.gw.publish('group-user', {
      event: 'task.progress_update',
      data: { task_id: 'b', status: 'running', progress: 5 },
    });
    await waitFor(() => batches.length === 2, 'two batches');
    expect(batches).toContainEqual(['a:10', 'a:20', 'a:30']);
    expect(batches).toContainEqual(['b:5']);
    expect(singles).toEqual(['a', 'a', 'a', 'b']);
  });

  it('onAny sees every event, and unsubscribing stops delivery', async () => {
    const c = track(new BusConsumer({ url: viaProxy(), userId: 'any-user', ...fast }));
    const seen: string[] = [];
    const off = c.onAny((f) => seen.push(f.event));
    await c.connect();
    await g.gw.publish('any-user', numbered(1));
    await waitFor(() => seen.length === 1, 'one event');
    off();
    await g.gw.publish('any-user', numbered(2));
    await waitFor(() => c.counters.eventsReceived === 2, 'second event received');
    expect(seen).toEqual(['session.notice']);
  });
});

describe('gateway restarts', () => {
  it('reconnects by itself and reports a gap when the embedded stream was lost', async () => {
    const g = await startGateway();
    try {
      // The gateway's hint is followed up to maxReconnectDelayMs: room for the whole of it (at most 5 s).
      const c = track(new BusConsumer({ url: g.url, userId: 'restart-user', ...fast, maxReconnectDelayMs: 10_000 }));
      const got: number[] = [];
      const gaps: unknown[] = [];
      const notices: unknown[] = [];
      c.on('session.notice', (d) => got.push(Number(d.message)));
      c.onClient('gap', (gap) => gaps.push(gap));
      c.onClient('notice', (n) => notices.push(n));
      await c.connect();
      await g.gw.publish('restart-user', numbered(1));
      await waitFor(() => got.length === 1, 'first event');
      const closes: Array<{ code: number; delayMs?: number }> = [];
      c.onClient('close', (e) => closes.push(e));

      await g.restart();
      await waitFor(() => c.state === 'open' && c.counters.reconnects === 1, 'reconnected', 8_000);
      expect(closes[0]?.code).toBe(CloseCode.ServiceRestart);
      expect(notices).toHaveLength(1);
      // The reconnect waited the jittered delay the gateway asked for, not the client's own backoff.
      expect(closes[0]?.delayMs).toBe((notices[0] as { reconnect_after_ms: number }).reconnect_after_ms);
      expect(gaps).toHaveLength(1);
      await g.gw.publish('restart-user', numbered(2));
      await waitFor(() => got.length === 2, 'event after the restart');
      expect(got).toEqual([1, 2]);
    } finally {
      await g.stop();
    }
  });
});

describe('auth and fatal closes', () => {
  const SECRET = 'client-test-secret-long-enough-0123456789';
  const now = () => Math.floor(Date.now() / 1000);
  let g: GatewayHandle;
  beforeAll(async () => {
    g = await startGateway({ authMode: 'jwt', jwtSecret: SECRET, maxSessionsPerUser: 1 }, () => ({
      auth: new JwtAuthenticator({ secret: SECRET, serviceRoleClaim: 'livebus_service' }),
    }));
  });
  afterAll(() => g.stop());

  it('retries once with a fresh token after an auth failure', async () => {
    const tokens = [
      signJwt({ sub: 'tok-user', exp: now() - 60 }, SECRET),
      signJwt({ sub: 'tok-user', exp: now() + 600 }, SECRET),
    ];
    let calls = 0;
    const c = track(new BusConsumer({ url: g.url, getToken: async () => tokens[calls++], ...fast }));
    await c.connect();
    expect(calls).toBe(2);
    expect(c.session?.user_id).toBe('tok-user');
  });

  it('stops with a typed error when the fresh token fails too', async () => {
    let calls = 0;
    const token = () => {
      calls++;
      return 'not-a-jwt';
    };
    const c = track(new BusConsumer({ url: g.url, getToken: token, ...fast }));
    const errors: Error[] = [];
    c.onClient('error', (e) => errors.push(e));
    await expect(c.connect()).rejects.toThrow();
    expect(c.state).toBe('closed');
    expect(calls).toBe(2);
    const fatal = errors.find((e) => e instanceof FatalCloseError) as FatalCloseError;
    expect(fatal).toMatchObject({ code: CloseCode.AuthFailed, reason: 'auth_failed' });
  });

  it('does not retry a fatal close (too many sessions)', async () => {
    const token = signJwt({ sub: 'one-session', exp: now() + 600 }, SECRET);
    const first = track(new BusConsumer({ url: g.url, token, sessionId: 'a', ...fast }));
    await first.connect();
    const second = track(new BusConsumer({ url: g.url, token, sessionId: 'b', ...fast }));
    await expect(second.connect()).rejects.toThrow();
    expect(second.counters.lastCloseReason).toBe('too_many_sessions');
    await new Promise((r) => setTimeout(r, 200));
    expect(second.state).toBe('closed');
    expect(second.counters.connects).toBe(0);
  });
});

describe('handshake timeout', () => {
  it('is transient: a gateway that never answers hello is retried with backoff, not given up on', async () => {
    const { WebSocketServer } = await import('ws');
    let connections = 0;
    const silent = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    silent.on('connection', () => {
      connections++; // accepts the socket, never sends welcome
    });
    await new Promise((r) => silent.once('listening', r));
    const port = (silent.address() as { port: number }).port;
    const c = track(
      new BusConsumer({ url: `ws://127.0.0.1:${port}/ws`, userId: 'x', handshakeTimeoutMs: 100, ...fast }),
    );
    const closes: Array<{ reason: string; willReconnect: boolean }> = [];
    c.onClient('close', (e) => closes.push(e));
    void c.connect().catch(() => {});
    await waitFor(() => closes.length >= 3, 'three handshake timeouts');
    expect(closes.every((e) => e.reason === 'auth_timeout' && e.willReconnect)).toBe(true);
    expect(connections).toBeGreaterThanOrEqual(3);
    c.close();
    for (const ws of silent.clients) ws.terminate();
    await new Promise((r) => silent.close(r));
  });
});

describe('close()', () => {
  it('during backoff stops for good: no further connection attempts', async () => {
    let attempts = 0;
    const server: Server = createServer((s) => {
      attempts++;
      s.destroy(); // refuse every handshake
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    const c = track(
      new BusConsumer({
        url: `ws://127.0.0.1:${port}/ws`,
        userId: 'x',
        backoff: () => 50, // fixed, so the test can find the client waiting in backoff
      }),
    );
    const states: string[] = [];
    c.onClient('state', (s) => states.push(s.newState));
    void c.connect().catch(() => {});
    await waitFor(() => attempts >= 2 && c.state === 'reconnecting', 'two attempts');
    c.close();
    const seen = attempts;
    await new Promise((r) => setTimeout(r, 300));
    expect(attempts).toBe(seen);
    expect(c.state).toBe('closed');
    expect(states.at(-1)).toBe('closed');
    await expect(c.rpc('REGISTRY.get_sessions', 'x')).rejects.toMatchObject({ code: 'unavailable' });
    await new Promise<void>((r) => server.close(() => r()));
  });
});
