import type { IncomingMessage } from 'node:http';
import { type RedisServerHandle, startRedisServer, startTcpProxy, type TcpProxy, waitFor } from '@livebus/test-support';
import { composePorts } from '../src/compose';
import { startGateway, type TestGateway } from './helpers';

// A Redis that keeps its connections open and stops answering (a frozen process, a failover
// address that swallows packets), reached through a proxy that stops forwarding: the admin
// reads of the gateway answer within their bound instead of hanging with it.
let server: RedisServerHandle;
let proxy: TcpProxy;
let t: TestGateway;
beforeAll(async () => {
  server = await startRedisServer();
  proxy = await startTcpProxy(server.port);
  t = await startGateway(
    { redisUrl: `redis://127.0.0.1:${proxy.port}`, tasksEnabled: true, readinessRequiresRedis: true },
    composePorts,
  );
});
afterAll(async () => {
  proxy?.thaw();
  await t?.close();
  await proxy?.close();
  await server?.stop();
});

const get = (path: string) => fetch(`${t.http}${path}`, { signal: AbortSignal.timeout(20_000) });

/** POST /publish of a notice to u1 on `gateway`, answered within 30 s. */
const publishNotice = (gateway: TestGateway, message: string) =>
  fetch(`${gateway.http}/publish`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ user_id: 'u1', event: { event: 'session.notice', data: { level: 'info', message } } }),
    signal: AbortSignal.timeout(30_000),
  });

describe('admin reads while Redis does not answer', () => {
  it('/cluster answers 503 unavailable, /metrics answers without the task queue depth; both again once Redis answers', async () => {
    expect((await get('/cluster')).status).toBe(200);
    expect(await (await get('/metrics')).text()).toContain('livebus_task_queue_depth{state="waiting"}');
    proxy.freeze();
    const cluster = await get('/cluster');
    expect(cluster.status).toBe(503);
    expect(await cluster.json()).toMatchObject({ error: { code: 'unavailable' } });
    const metrics = await get('/metrics');
    expect(metrics.status).toBe(200);
    const text = await metrics.text();
    expect(text).toContain('livebus_connections');
    expect(text).not.toContain('livebus_task_queue_depth{');
    proxy.thaw();
    expect((await get('/cluster')).status).toBe(200);
  });

  it('readiness says redis down while Redis does not answer a PING (503 with READINESS_REQUIRES_REDIS), and ready again once it does', async () => {
    const readiness = async () => {
      const r = await get('/health/readiness');
      return { status: r.status, body: (await r.json()) as { redis?: string } };
    };
    // Ready first (the test before froze Redis too: its probe answers again within a second or so).
    await waitFor(async () => (await readiness()).status === 200, 'ready before the freeze', 15_000);
    expect((await readiness()).body).toMatchObject({ redis: 'ok' });
    proxy.freeze();
    try {
      await waitFor(async () => (await readiness()).status === 503, 'readiness 503 while frozen', 15_000);
      expect((await readiness()).body).toMatchObject({ redis: 'down' });
    } finally {
      proxy.thaw();
    }
    await waitFor(async () => (await readiness()).status === 200, 'ready again', 15_000);
    expect((await readiness()).body).toMatchObject({ redis: 'ok' });
  });
});

describe('POST /publish with the outbox off (PUBLISH_OUTBOX_MAX_EVENTS=0) while Redis does not answer', () => {
  it('answers 503 redis_unavailable once the attempts are over, never 202 queued for an event that is dropped', async () => {
    const off = await startGateway(
      {
        redisUrl: `redis://127.0.0.1:${proxy.port}`,
        publishOutboxMaxEvents: 0,
        publishRetryDelaysMs: [0],
      },
      composePorts,
    );
    try {
      proxy.freeze();
      const res = await publishNotice(off, 'hi');
      expect(res.status).toBe(503);
      // Its attempt went out and got no answer: Redis may have stored it (a retry could store it twice).
      expect(await res.json()).toMatchObject({
        error: { code: 'unavailable', reason: 'redis_unavailable', maybe_stored: true },
      });
    } finally {
      proxy.thaw();
      await off.close();
    }
  }, 40_000);
});

describe('a shutdown while a POST /publish waits on Redis', () => {
  it('answers that request before the server closes, rather than cutting its connection', async () => {
    const draining = await startGateway(
      { redisUrl: `redis://127.0.0.1:${proxy.port}`, publishRetryDelaysMs: [0], shutdownGraceMs: 12_000 },
      composePorts,
    );
    try {
      // The request is in the handler (its body read, its publish waiting on Redis) before the shutdown starts.
      const inHandler = new Promise<void>((resolve) =>
        draining.gw.server.once('request', (req: IncomingMessage) => req.once('end', () => resolve())),
      );
      proxy.freeze();
      const answer = publishNotice(draining, 'in flight');
      await inHandler;
      const shutdown = draining.gw.shutdown('test');
      // Its one attempt times out unanswered: the event is queued, and the caller is told so.
      const res = await answer;
      expect(res.status).toBe(202);
      // Answered while draining: its connection closes after it, for the shutdown to go on.
      expect(res.headers.get('connection')).toBe('close');
      expect(await res.json()).toMatchObject({ queued: true });
      await shutdown;
    } finally {
      proxy.thaw();
      await draining.close();
    }
  }, 40_000);
});
