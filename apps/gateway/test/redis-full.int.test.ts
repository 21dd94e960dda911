import { CloseCode } from '@livebus/protocol';
import { type RedisServerHandle, startRedisServer } from '@livebus/test-support';
import { Redis } from 'ioredis';
import { composePorts } from '../src/compose';
import { connectAs, httpJson, startGateway, TestClient, type TestGateway } from './helpers';

// A Redis at `maxmemory` with `noeviction` (docs/redis.md: the policy the fleet needs) refuses
// writes with OOM: publishes are refused (503, the caller told why), new sessions are closed
// 1013 and retried by their clients, the sessions already open stay open; once memory is
// freed, all of it works again with nothing to restart.
let server: RedisServerHandle;
let t: TestGateway;
let admin: Redis;
beforeAll(async () => {
  server = await startRedisServer();
  admin = new Redis({ port: server.port, host: '127.0.0.1' });
  t = await startGateway({ instanceId: 'gw-full', redisUrl: `redis://127.0.0.1:${server.port}` }, composePorts);
}, 30_000);
afterAll(async () => {
  await t?.close();
  admin?.disconnect();
  await server?.stop();
});

const progress = (n: number) => ({
  event: 'task.progress_update',
  data: { task_id: 't', status: 'running', progress: n },
});
const publish = (uid: string, n: number) =>
  httpJson(`${t.http}/publish`, { method: 'POST', body: JSON.stringify({ user_id: uid, event: progress(n) }) });

/**
 * Caps Redis's memory below what it uses now: every write is refused (OOM) from here on, whatever
 * Redis frees meanwhile (a cap just above the use, filled up to it, let a small write through
 * once a client's buffer was freed on a loaded host).
 */
async function fill(): Promise<void> {
  const used = Number(/used_memory:(\d+)/.exec(await admin.info('memory'))?.[1]);
  await admin.config('SET', 'maxmemory-policy', 'noeviction');
  await admin.config('SET', 'maxmemory', String(Math.floor(used / 2)));
  await expect(admin.set('fill', 'x')).rejects.toThrow(/OOM/);
}

it('a full Redis: publishes refused with the reason, new hellos closed 1013, open sessions kept; all works again once memory is freed', async () => {
  const open = await connectAs(t.url, 'full-a');
  const first = await publish('full-a', 1);
  expect((await open.client.next('event')).cursor).toBe(first.body.cursor);

  await fill();
  const refused = await publish('full-a', 2);
  expect(refused.status).toBe(503);
  expect(refused.body).toMatchObject({ error: { code: 'unavailable', reason: 'redis_error' } });
  expect(String((refused.body.error as { message: string }).message)).toContain('OOM');
  const hello = new TestClient(t.url);
  await hello.opened;
  hello.send({ type: 'hello', v: 1, user_id: 'full-b' });
  expect(await hello.closed).toEqual({ code: CloseCode.TryAgainLater, reason: 'try again later' });
  expect(t.logs.of('presence_error', 'full-b')).toMatchObject([{ op: 'add' }]);
  expect(open.client.ws.readyState).toBe(open.client.ws.OPEN);

  // Memory freed: the same calls succeed, the open session gets the next event.
  await admin.config('SET', 'maxmemory', '0');
  const stored = await publish('full-a', 3);
  expect(stored.status).toBe(202);
  expect((await open.client.next('event', (e) => e.cursor === stored.body.cursor)).data).toEqual(progress(3).data);
  expect(open.client.events().map((e) => e.data)).toEqual([progress(1).data, progress(3).data]);
  const back = await connectAs(t.url, 'full-b');
  expect(back.welcome.user_id).toBe('full-b');
}, 60_000);
