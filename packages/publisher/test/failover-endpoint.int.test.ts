import { type RedisServerHandle, startRedisServer, startTcpProxy, type TcpProxy } from '@livebus/test-support';
import { Redis } from 'ioredis';
import { createPublisher } from '../src';

const notice = (i: number) => ({
  event: 'session.notice' as const,
  data: { level: 'info' as const, message: String(i) },
});

// A failover behind a DNS name (ElastiCache's primary endpoint): the name moves to the new
// primary, the connections made before stay on the old one, which is now a replica and
// answers every write READONLY. The proxy is the name: `retarget` moves it, open connections stay.
let oldPrimary: RedisServerHandle;
let newPrimary: RedisServerHandle;
let endpoint: TcpProxy;
beforeAll(async () => {
  [oldPrimary, newPrimary] = await Promise.all([startRedisServer(), startRedisServer()]);
  endpoint = await startTcpProxy(oldPrimary.port);
});
afterAll(async () => {
  await endpoint.close();
  await Promise.all([oldPrimary.stop(), newPrimary.stop()]);
});

describe('a publisher on a standalone Redis behind a name, when the primary fails over', () => {
  it('reconnects on READONLY and stores the next event on the new primary (not READONLY for as long as the connection lives)', async () => {
    // The outbox off: a publish that cannot be stored rejects after its attempts instead of waiting.
    const p = createPublisher(
      { redisUrl: `redis://127.0.0.1:${endpoint.port}` },
      { retryDelaysMs: [50, 100, 200], outboxMaxEvents: 0 },
    );
    const admin = new Redis(oldPrimary.url);
    const admin2 = new Redis(newPrimary.url);
    try {
      await p.publish('fo-1', notice(0));
      expect(endpoint.connections).toBe(1);
      // The failover: the old primary follows the new one, and the name points at the new one.
      await admin.replicaof('127.0.0.1', newPrimary.port);
      endpoint.retarget(newPrimary.port);
      const stored = await p.publish('fo-1', notice(1));
      expect(stored.cursor).toEqual(expect.any(String));
      // On the new primary, where the name points now.
      expect(await admin2.dbsize()).toBeGreaterThan(0);
      expect(p.stats().retried).toBeGreaterThan(0);
    } finally {
      admin.disconnect();
      admin2.disconnect();
      await p.close();
    }
  }, 20_000);
});
