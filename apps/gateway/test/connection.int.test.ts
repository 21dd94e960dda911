import { CloseCode } from '@livebus/protocol';
import { startTcpProxy, waitFor } from '@livebus/test-support';
import { WebSocket } from 'ws';
import { connectAs, registryWith, shift, startGateway, TestClient, type TestGateway } from './helpers';

describe('heartbeat', () => {
  it('terminates a socket silent for the ping timeout and records ping_timeout', async () => {
    const t = await startGateway({ pingIntervalMs: 100, pingTimeoutMs: 300 });
    const proxy = await startTcpProxy(t.port);
    try {
      const c = new TestClient(`ws://127.0.0.1:${proxy.port}/ws`);
      await c.hello({ user_id: 'silent' });
      // An idle but healthy client survives several timeouts: the pongs keep it alive.
      await new Promise((r) => setTimeout(r, 700));
      expect(t.gw.stats().sessions).toBe(1);
      proxy.freeze();
      const closed = await t.hooks.waitFor('session.close', 'silent', () => true, 3_000);
      expect(closed).toMatchObject({ type: 'ping_timeout', code: 1006 });
      proxy.dropAll();
    } finally {
      await proxy.close();
      await t.close();
    }
  });

  it('pings every socket of a real gateway again each interval (the slicing, exactly: src/core/heartbeat.test.ts)', async () => {
    // The sockets send no hello: a handshake deadline longer than the test, so that a slow machine
    // (seen in CI: opening 250 one after another outlasted a 10 s deadline) cannot close the first ones.
    const t = await startGateway({ pingIntervalMs: 1_000, pingTimeoutMs: 5_000, handshakeTimeoutMs: 120_000 });
    const sockets: WebSocket[] = [];
    try {
      const pings: number[][] = [];
      const opened: Promise<unknown>[] = [];
      for (let i = 0; i < 250; i++) {
        const ws = new WebSocket(t.url);
        const mine: number[] = [];
        pings.push(mine);
        ws.on('ping', () => mine.push(Date.now()));
        sockets.push(ws);
        opened.push(new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject)));
      }
      await Promise.all(opened);
      await waitFor(() => pings.every((p) => p.length >= 2), 'two pings each', 30_000);
      // How the pings of one sweep spread over the interval is a figure here: the slices and
      // their times are asserted on fake timers in the unit test.
      const seconds = pings.map((p) => p[1] as number);
      const figures = {
        sweepSpreadMs: Math.max(...seconds) - Math.min(...seconds),
        minGapMs: Math.min(...pings.map((p) => (p[1] as number) - (p[0] as number))),
      };
      process.stdout.write(`heartbeat sweep figures: ${JSON.stringify(figures)}\n`);
    } finally {
      for (const ws of sockets) ws.terminate();
      await t.close();
    }
  });

  it('answers app-level ping frames (browsers) with pong echoing ts', async () => {
    const t = await startGateway();
    const { client } = await connectAs(t.url, 'pinger');
    client.send({ type: 'ping', ts: 123 });
    expect(await client.next('pong')).toEqual({ type: 'pong', ts: 123 });
    await client.close();
    await t.close();
  });
});

describe('slow consumers', () => {
  it('are closed with the slow-consumer code instead of buffering without bound', async () => {
    const t = await startGateway({ maxBufferedBytes: 64 * 1024 });
    const proxy = await startTcpProxy(t.port);
    try {
      const c = new TestClient(`ws://127.0.0.1:${proxy.port}/ws`);
      await c.hello({ user_id: 'slow' });
      proxy.freeze();
      const message = 'x'.repeat(16 * 1024);
      for (let i = 0; i < 2_000 && t.gw.stats().sessions > 0; i++) {
        await t.gw.publish('slow', { event: 'session.notice', data: { level: 'info', message } });
        if (i % 50 === 0) await new Promise((r) => setImmediate(r));
      }
      const entry = await t.logs.waitFor('ws_disconnect', 'slow', 5_000);
      expect(entry.type).toBe('slow_consumer');
      expect(t.logs.of('ws_slow_consumer', 'slow')).toHaveLength(1);
      proxy.dropAll();
    } finally {
      await proxy.close();
      await t.close();
    }
  });

  it('are closed with the slow-consumer code when the answers to their own calls pile up (a client that calls and does not read)', async () => {
    const registry = registryWith({});
    // The per-connection frame limit out of the way: the calls are many, and sent at once.
    const t = await startGateway(
      {
        maxBufferedBytes: 64 * 1024,
        unifiedRegistryEnabled: true,
        rateLimitFramesPerS: 100_000,
        rateLimitBurst: 100_000,
      },
      registry.deps,
    );
    const proxy = await startTcpProxy(t.port);
    try {
      const c = new TestClient(`ws://127.0.0.1:${proxy.port}/ws`);
      await c.hello({ user_id: 'caller' });
      // Each answer carries about 60 KB; the client's calls still reach the gateway, its answers wait in the proxy.
      const big = 'x'.repeat(60_000);
      expect(await c.call('UNIFIED_REGISTRY.update_user_registry', ['caller', { services: { big } }])).toMatchObject({
        type: 'rpc_result',
      });
      proxy.holdReplies();
      // Past what the loopback sockets hold (a few MB each way), the answers queue in the gateway.
      const closedYet = () => t.hooks.of('session.close', 'caller').length > 0;
      for (let sent = 0; sent < 1_000 && !closedYet(); ) {
        c.send({ type: 'rpc', id: `read-${sent++}`, method: 'UNIFIED_REGISTRY.get_user_registry', args: ['caller'] });
        if (sent % 20 === 0) await new Promise((r) => setTimeout(r, 5));
      }
      // Closed as a slow consumer (4007; its close frame waits behind the answers, so the socket ends 1006 a second later).
      expect(await t.hooks.waitFor('session.close', 'caller', () => true, 30_000)).toMatchObject({
        type: 'slow_consumer',
      });
      proxy.dropAll();
    } finally {
      await proxy.close();
      await t.close();
    }
  });
});

describe('sessions', () => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startGateway({ maxSessionsPerUser: 2 });
  });
  afterAll(() => t.close());

  it('refuses a session beyond MAX_SESSIONS_PER_USER with 4006', async () => {
    const a = await connectAs(t.url, 'many', { session_id: 'a' });
    const b = await connectAs(t.url, 'many', { session_id: 'b' });
    const c = new TestClient(t.url);
    await c.opened;
    c.send({ type: 'hello', v: 1, user_id: 'many', session_id: 'c' });
    expect((await c.closed).code).toBe(CloseCode.TooManySessions);
    await Promise.all([a.client.close(), b.client.close()]);
  });

  it('a reconnect with the same session id replaces the old socket (4008) without a detach', async () => {
    const old = await connectAs(t.url, 'tab-user', { session_id: 'tab' });
    const fresh = await connectAs(t.url, 'tab-user', { session_id: 'tab' });
    expect((await old.client.closed).code).toBe(CloseCode.Replaced);
    // The client sees its close before the gateway logs it: wait for the log line.
    const disconnect = await t.logs.waitFor('ws_disconnect', 'tab-user');
    expect(disconnect).toMatchObject({ code: CloseCode.Replaced, type: 'replaced' });
    expect(t.gw.stats().sessions).toBe(1);
    // The user never dropped to zero sessions: no detach was started, nothing was cancelled.
    expect(t.hooks.of('detach.delay_start', 'tab-user')).toHaveLength(0);
    expect(t.hooks.of('detach.cancelled', 'tab-user')).toHaveLength(0);
    // Events reach the new socket only.
    await t.gw.publish('tab-user', { event: 'session.notice', data: { level: 'info', message: 'after' } });
    await fresh.client.next('event');
    expect(old.client.events()).toHaveLength(0);
    await fresh.client.close();
  });

  it('logs ws_connect with uid and session id', async () => {
    const { client } = await connectAs(t.url, 'logged', { session_id: 'tab-9' });
    expect(t.logs.of('ws_connect', 'logged')[0]).toMatchObject({
      uid: 'logged',
      session_id: 'tab-9',
      instance_id: 'gw-test',
      level: 'info',
    });
    await client.close();
  });
});

describe('resume', () => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startGateway({ streamRetentionEvents: 5 });
  });
  afterAll(() => t.close());

  const notice = (i: number) => ({
    event: 'session.notice' as const,
    data: { level: 'info' as const, message: `m${i}` },
  });

  it('replays what a client missed, exactly once and in order, then goes live', async () => {
    const first = await connectAs(t.url, 'resumer');
    await t.gw.publish('resumer', notice(1));
    const got = await first.client.next('event');
    await first.client.close();
    for (let i = 2; i <= 4; i++) await t.gw.publish('resumer', notice(i));

    const again = await connectAs(t.url, 'resumer', { last_cursor: got.cursor });
    expect(again.welcome.resume).toMatchObject({ status: 'resumed', replayed: 3 });
    await t.gw.publish('resumer', notice(5));
    await waitFor(() => again.client.events().length === 4, 'four events');
    const events = again.client.events();
    expect(events.map((e) => (e.data as { message: string }).message)).toEqual(['m2', 'm3', 'm4', 'm5']);
    expect(events.map((e) => e.cursor)).toEqual([1, 2, 3, 4].map((i) => shift(got.cursor, i)));
    // The welcome comes before any replayed event.
    expect(again.client.frames[0]?.type).toBe('welcome');
    await again.client.close();
  });

  it('says gap when the missed events are no longer retained, and when the cursor is from elsewhere', async () => {
    const first = await connectAs(t.url, 'gapper');
    await t.gw.publish('gapper', notice(0));
    const seen = await first.client.next('event');
    await first.client.close();
    for (let i = 1; i <= 8; i++) await t.gw.publish('gapper', notice(i)); // retention is 5
    const again = await connectAs(t.url, 'gapper', { last_cursor: seen.cursor });
    expect(again.welcome.resume.status).toBe('gap');
    expect(again.welcome.resume.cursor).toBe(shift(seen.cursor, 8));
    expect(again.client.events()).toEqual([]);
    await again.client.close();

    const stranger = await connectAs(t.url, 'gapper', { last_cursor: 'elsewhere:42' });
    expect(stranger.welcome.resume.status).toBe('gap');
    await stranger.client.close();
  });
});

describe('rate limiting', () => {
  it('drops frames over the limit with one rate_limited error, and closes a client that keeps flooding', async () => {
    // One token a second: none refills during the burst, however slow the machine is.
    const t = await startGateway({ rateLimitFramesPerS: 1, rateLimitBurst: 10 });
    try {
      const { client } = await connectAs(t.url, 'flooder');
      for (let i = 0; i < 15; i++) client.send({ type: 'ping', ts: i });
      await client.next('error', (f) => f.code === 'rate_limited');
      await waitFor(() => client.frames.filter((f) => f.type === 'pong').length >= 9, 'pongs within the burst');
      expect(client.frames.filter((f) => f.type === 'error')).toHaveLength(1);
      // A polite pace is served again once the bucket refills.
      await new Promise((r) => setTimeout(r, 1_100));
      client.send({ type: 'ping', ts: 999 });
      await client.next('pong', (f) => f.ts === 999);
      // A flood of more than a burst into an empty bucket is closed with 4005.
      for (let i = 0; i < 100; i++) client.send({ type: 'ping', ts: 1000 + i });
      expect((await client.closed).code).toBe(CloseCode.RateLimited);
      const entry = await t.logs.waitFor('ws_disconnect', 'flooder');
      expect(entry.type).toBe('rate_limited');
    } finally {
      await t.close();
    }
  });
});
