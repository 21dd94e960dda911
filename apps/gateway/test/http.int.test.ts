import { type RedisServerHandle, startRedisServer, waitFor } from '@livebus/test-support';
import { composePorts } from '../src/compose';
import { connectAs, httpJson, registryWith, startGateway, type TestGateway } from './helpers';

describe('health, metrics and publish on the embedded default', () => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startGateway();
  });
  afterAll(() => t.close());

  it('GET /healthz reports the documented fields', async () => {
    const { client } = await connectAs(t.url, 'h1');
    const res = await httpJson(`${t.http}/healthz`);
    expect(res.status).toBe(200);
    expect(res.body).toEqual(
      expect.objectContaining({
        status: 'ok',
        version: expect.any(String),
        listeners_count: 1,
        workflow_listeners_count: 0,
        redis: 'disabled',
        firestore: 'disabled',
        uptime_s: expect.any(Number),
        connections: 1,
        draining: false,
      }),
    );
    const watch = await client.call('WORKFLOW.watch', ['job-1']);
    expect(watch).toMatchObject({ type: 'rpc_result', result: { watching: true } });
    expect((await httpJson(`${t.http}/healthz`)).body.workflow_listeners_count).toBe(1);
    await client.close();
  });

  it('liveness and readiness answer 200 when nothing is wrong', async () => {
    expect((await httpJson(`${t.http}/health/liveness`)).status).toBe(200);
    expect((await httpJson(`${t.http}/health/readiness`)).body).toMatchObject({ status: 'ready', redis: 'disabled' });
  });

  it('GET /ws-metrics tracks disconnects per user and detach outcomes', async () => {
    for (let i = 0; i < 3; i++) {
      const { client } = await connectAs(t.url, 'flaky-user');
      client.ws.terminate(); // abnormal closure seen by the server as 1006
      await waitFor(() => t.gw.stats().sessions === 0, 'session gone');
    }
    await t.gw.idle(); // no detach step waiting its turn: each timer is pending or decided
    const res = await httpJson(`${t.http}/ws-metrics`);
    expect(res.status).toBe(200);
    const m = res.body.metrics as Record<string, unknown>;
    expect(m.top_disconnects).toEqual(expect.arrayContaining([['flaky-user', 3]]));
    expect((m.all_reasons as Record<string, unknown>)['flaky-user']).toEqual({ abnormal_closure: 3 });
    expect((m.last_disconnect as Record<string, string>)['flaky-user']).toMatch(/^\d{4}-\d\d-\d\dT/);
    // Every detach timer that started was either cancelled, executed, or is still pending.
    const detach = m.detach as { cancelled: number; executed: number; pending: number; cancel_ratio: number };
    expect(detach.cancelled + detach.executed + detach.pending).toBe(t.hooks.of('detach.delay_start').length);
    const decided = detach.cancelled + detach.executed;
    expect(detach.cancel_ratio).toBe(decided === 0 ? 0 : detach.cancelled / decided);
    expect(m.total_users_tracked).toBe(Object.keys(m.all_reasons as object).length);
  });

  it('GET /metrics serves Prometheus text without user ids in labels', async () => {
    await httpJson(`${t.http}/rpc`, {
      method: 'POST',
      token: 'metrics-user',
      body: '{"method":"REGISTRY.get_sessions","args":["metrics-user"]}',
    });
    const res = await fetch(`${t.http}/metrics`);
    const text = await res.text();
    expect(res.headers.get('content-type')).toContain('text/plain');
    for (const name of [
      'livebus_connections',
      'livebus_sessions',
      'livebus_disconnects_total{reason="abnormal_closure"}',
      'livebus_rpc_calls_total{method="REGISTRY.get_sessions",outcome="ok"}',
      'livebus_rpc_duration_seconds_bucket',
      'livebus_nodejs_eventloop_lag_seconds',
      'livebus_detaches_total',
    ]) {
      expect(text).toContain(name);
    }
    expect(text).not.toContain('flaky-user');
    expect(text).not.toContain('metrics-user');
  });

  it('POST /publish delivers a validated event to every session of the user', async () => {
    const a = await connectAs(t.url, 'pub-user', { session_id: 'a' });
    const b = await connectAs(t.url, 'pub-user', { session_id: 'b' });
    const event = { event: 'task.progress_update', data: { task_id: 't1', status: 'running', progress: 10 } };
    const res = await httpJson(`${t.http}/publish`, {
      method: 'POST',
      body: JSON.stringify({ user_id: 'pub-user', event }),
    });
    expect(res.status).toBe(202);
    for (const c of [a.client, b.client]) {
      const got = await c.next('event');
      expect(got).toMatchObject({ ...event, cursor: res.body.cursor });
    }
    const bad = await httpJson(`${t.http}/publish`, {
      method: 'POST',
      body: JSON.stringify({
        user_id: 'pub-user',
        event: { event: 'task.progress_update', data: { task_id: 't1', status: 'nope', progress: 10 } },
      }),
    });
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.body)).toContain('event.data.status');
    await Promise.all([a.client.close(), b.client.close()]);
  });

  it('unknown routes are 404, a known path with another method 405 naming the allowed ones, and bodies are size-limited', async () => {
    expect((await httpJson(`${t.http}/nope`)).status).toBe(404);
    const wrong = await fetch(`${t.http}/rpc`);
    expect(wrong.status).toBe(405);
    expect(wrong.headers.get('allow')).toBe('POST');
    expect(await wrong.json()).toMatchObject({ error: { code: 'method_not_allowed' } });
    const big = await httpJson(`${t.http}/rpc`, { method: 'POST', token: 'u', body: 'x'.repeat(2 * 1024 * 1024) });
    expect(big.status).toBe(413);
  });
});

describe('with Redis', () => {
  let redis: RedisServerHandle;
  let t: TestGateway;
  beforeAll(async () => {
    redis = await startRedisServer();
    t = await startGateway({ redisUrl: redis.url }, composePorts);
    await waitFor(async () => (await httpJson(`${t.http}/healthz`)).body.redis === 'ok', 'redis ok');
  });
  afterAll(async () => {
    await t.close();
    await redis.stop();
  });

  it('live sessions keep their unified registry document alive past its TTL; it expires once they leave', async () => {
    const t2 = await startGateway(
      {
        redisUrl: redis.url,
        unifiedRegistryEnabled: true,
        unifiedRegistryTtlS: 1,
        pingIntervalMs: 200,
        pingTimeoutMs: 5_000,
      },
      composePorts,
    );
    try {
      await waitFor(async () => (await httpJson(`${t2.http}/healthz`)).body.redis === 'ok', 'redis ok');
      const { client } = await connectAs(t2.url, 'ttl-user');
      await client.call('UNIFIED_REGISTRY.update_user_registry', [
        'ttl-user',
        { companies: { current_company_id: 'acme' } },
      ]);
      await new Promise((r) => setTimeout(r, 1_600)); // past the 1 s TTL: the heartbeats refreshed it
      const alive = await client.call('UNIFIED_REGISTRY.get_user_registry', ['ttl-user']);
      expect(alive).toMatchObject({ type: 'rpc_result', result: { companies: { current_company_id: 'acme' } } });
      await client.close();
      await new Promise((r) => setTimeout(r, 1_600)); // no session refreshes it any more
      const svc = await httpJson(`${t2.http}/rpc`, {
        method: 'POST',
        token: 'service:backend',
        body: JSON.stringify({ method: 'UNIFIED_REGISTRY.get_user_registry', args: ['ttl-user'] }),
      });
      expect(svc.body.result).toMatchObject({ companies: { current_company_id: null } });
    } finally {
      await t2.close();
    }
  });

  it('a Redis outage keeps /healthz and readiness at 200 (saying so), and takes readiness to 503 only with READINESS_REQUIRES_REDIS', async () => {
    const strict = await startGateway({ redisUrl: redis.url, readinessRequiresRedis: true }, composePorts);
    try {
      await redis.kill();
      await waitFor(async () => (await httpJson(`${t.http}/healthz`)).body.redis === 'down', 'redis down on healthz');
      const health = await httpJson(`${t.http}/healthz`);
      expect(health.status).toBe(200);
      expect((await httpJson(`${t.http}/health/liveness`)).status).toBe(200);
      const ready = await httpJson(`${t.http}/health/readiness`);
      expect(ready).toMatchObject({ status: 200, body: { status: 'ready', redis: 'down' } });
      await waitFor(async () => (await httpJson(`${strict.http}/health/readiness`)).status === 503, 'strict 503');
      expect((await httpJson(`${strict.http}/health/readiness`)).body).toMatchObject({
        status: 'not_ready',
        redis: 'down',
      });
    } finally {
      await strict.close();
    }
    // Registry calls during the outage fail as retryable, not as internal errors. Over
    // HTTP: with the event bus in Redis too, no WebSocket session opens while it is away.
    const refused = await httpJson(`${t.http}/rpc`, {
      method: 'POST',
      token: 'service:backend',
      body: JSON.stringify({ method: 'REGISTRY.register_user', args: ['during-blip', 's1', '/'] }),
    });
    expect(refused).toMatchObject({ status: 503, body: { error: { code: 'unavailable' } } });

    await redis.restart();
    await waitFor(async () => (await httpJson(`${t.http}/healthz`)).body.redis === 'ok', 'redis ok again', 10_000);
    const { client } = await connectAs(t.url, 'after-blip');
    const reg = await client.call('REGISTRY.register_user', ['after-blip', 's1', '/']);
    expect(reg.type).toBe('rpc_result');
    await client.close();
  });
});

describe('UNIFIED_REGISTRY_ENABLED', () => {
  it('false: UNIFIED_REGISTRY.* answers unavailable', async () => {
    const t = await startGateway({ unifiedRegistryEnabled: false });
    const { client } = await connectAs(t.url, 'uu');
    expect(await client.call('UNIFIED_REGISTRY.get_user_registry', ['uu'])).toMatchObject({
      type: 'rpc_error',
      error: { code: 'unavailable' },
    });
    await client.close();
    await t.close();
  });

  it('true: reads and patches the unified document, and falls back to the legacy view when it fails', async () => {
    let broken = false;
    const down = () => Promise.reject(new Error('unified store down'));
    const { store, deps } = registryWith({
      getUnified: (u) => (broken ? down() : store.getUnified(u)),
      putUnified: (u, d, ttl) => (broken ? down() : store.putUnified(u, d, ttl)),
    });
    const t = await startGateway({ unifiedRegistryEnabled: true, registryDebug: true }, deps);
    const { client } = await connectAs(t.url, 'uni');
    const initial = await client.call('UNIFIED_REGISTRY.get_user_registry', ['uni']);
    expect(initial).toMatchObject({
      type: 'rpc_result',
      result: {
        user_info: { user_id: 'uni', status: 'online' },
        companies: { current_company_id: null },
        services: {},
      },
    });
    const patched = await client.call('UNIFIED_REGISTRY.update_user_registry', [
      'uni',
      { companies: { current_company_id: 'acme' }, services: { inbox: { unread: 1 } } },
    ]);
    expect(patched).toMatchObject({ type: 'rpc_result', result: { companies: { current_company_id: 'acme' } } });
    const updatedEvent = await client.next('event', (e) => e.event === 'registry.updated');
    expect(updatedEvent.data).toMatchObject({ user_id: 'uni', reason: 'registry_updated' });
    expect(t.logs.of('registry_op').length).toBeGreaterThan(0);

    broken = true;
    const fallback = await client.call('UNIFIED_REGISTRY.get_user_registry', ['uni']);
    expect(fallback).toMatchObject({ type: 'rpc_result', result: { user_info: { user_id: 'uni', status: 'online' } } });
    expect(t.logs.of('fallback', 'uni')[0]).toMatchObject({
      op: 'get_user_registry',
      error: 'Error: unified store down',
    });
    const refused = await client.call('UNIFIED_REGISTRY.update_user_registry', ['uni', { services: { x: 1 } }]);
    expect(refused).toMatchObject({ type: 'rpc_error', error: { code: 'unavailable' } });
    await client.close();
    await t.close();
  });
});

describe('RPC failures', () => {
  it('a handler slower than RPC_TIMEOUT_MS answers timeout; an unexpected failure answers internal without details', async () => {
    const { deps } = registryWith({
      // A slow store for one user; a corrupt answer (a bug, not an outage) for another.
      getSessions: (u) =>
        u === 'rpc-fail'
          ? new Promise((r) => setTimeout(() => r([]), 500))
          : Promise.resolve([{ secret: 'redis://user:pw@host' }] as never),
    });
    const t = await startGateway({ rpcTimeoutMs: 100 }, deps);
    try {
      const { client } = await connectAs(t.url, 'rpc-fail');
      const slow = await client.call('REGISTRY.get_sessions', ['rpc-fail']);
      expect(slow).toMatchObject({ type: 'rpc_error', error: { code: 'timeout' } });
      const other = await connectAs(t.url, 'rpc-bad');
      const broken = await other.client.call('REGISTRY.get_sessions', ['rpc-bad']);
      await other.client.close();
      expect(JSON.stringify(broken)).not.toContain('redis://');
      expect(broken).toEqual({
        type: 'rpc_error',
        id: expect.any(Number),
        error: { code: 'internal', message: 'internal error' },
      });
      expect(t.logs.of('rpc_error')[0]).toMatchObject({ method: 'REGISTRY.get_sessions', level: 'error' });
      const http = await httpJson(`${t.http}/rpc`, {
        method: 'POST',
        token: 'rpc-fail',
        body: JSON.stringify({ method: 'REGISTRY.get_sessions', args: ['rpc-fail'] }),
      });
      expect(http.status).toBe(504);
      await client.close();
    } finally {
      await t.close();
    }
  });
});
