import { type RedisServerHandle, startRedisServer, startTcpProxy, type TcpProxy, waitFor } from '@livebus/test-support';
import { Redis } from 'ioredis';
import { composePorts } from '../src/compose';
import { connectAs, startGateway, type TestGateway } from './helpers';

// A failover behind a DNS name (ElastiCache's primary endpoint): the name moves to the new
// primary, the connections made before stay on the old one, now a replica that answers every
// write READONLY. The proxy is the name: `retarget` moves it, open connections stay.
let oldPrimary: RedisServerHandle;
let newPrimary: RedisServerHandle;
let endpoint: TcpProxy;
let t: TestGateway;
beforeAll(async () => {
  [oldPrimary, newPrimary] = await Promise.all([startRedisServer(), startRedisServer()]);
  endpoint = await startTcpProxy(oldPrimary.port);
  t = await startGateway({ redisUrl: `redis://127.0.0.1:${endpoint.port}` }, composePorts);
});
afterAll(async () => {
  await t?.close();
  await endpoint?.close();
  await Promise.all([oldPrimary?.stop(), newPrimary?.stop()]);
});

describe('a gateway on a standalone Redis behind a name, when the primary fails over', () => {
  it('reconnects its connections on READONLY: new sessions open again, and their presence is on the new primary', async () => {
    const before = await connectAs(t.url, 'fo-a');
    const admin = new Redis(oldPrimary.url);
    const admin2 = new Redis(newPrimary.url);
    try {
      await admin.replicaof('127.0.0.1', newPrimary.port);
      endpoint.retarget(newPrimary.port);
      // A publish first (no hello yet to meet READONLY in a plain write): its append is answered
      // READONLY by the script, the connection replaced, the retry stored on the new primary.
      const res = await fetch(`${t.http}/publish`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          user_id: 'fo-a',
          event: { event: 'session.notice', data: { level: 'info', message: 'x' } },
        }),
      });
      expect(res.status).toBe(202);
      expect(await res.json()).toMatchObject({ accepted: true, cursor: expect.any(String) });
      // A hello that meets READONLY fails (the client retries); one after the reconnect opens.
      const after = await waitFor(
        async () => {
          try {
            return await connectAs(t.url, 'fo-b');
          } catch {
            return undefined;
          }
        },
        'a session to open after the failover',
        15_000,
      );
      expect(after.welcome.type).toBe('welcome');
      expect(await admin2.dbsize()).toBeGreaterThan(0);
      after.client.close();
    } finally {
      before.client.close();
      admin.disconnect();
      admin2.disconnect();
    }
  }, 30_000);
});
