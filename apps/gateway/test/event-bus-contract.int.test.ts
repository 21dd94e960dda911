import {
  type RedisClusterHandle,
  type RedisServerHandle,
  startRedisCluster,
  startRedisServer,
} from '@livebus/test-support';
import { Cluster, Redis } from 'ioredis';
import { contractRetention, eventBusContract } from '../src/bus/event-bus.contract';
import { RedisEventBus } from '../src/bus/redis-event-bus';

let server: RedisServerHandle;
let cluster: RedisClusterHandle;
const admins: Array<Redis | Cluster> = [];
beforeAll(async () => {
  [server, cluster] = await Promise.all([startRedisServer(), startRedisCluster()]);
}, 60_000);
afterAll(async () => {
  for (const c of admins) c.disconnect();
  await Promise.all([server.stop(), cluster.stop()]);
});

// Each make() is a client of its own: two handles are two gateway instances.
eventBusContract('Redis (standalone)', {
  make: async () => new RedisEventBus(new Redis(server.url), { ...contractRetention, ownsClient: true }),
  reset: async () => {
    const admin = new Redis(server.url);
    admins.push(admin);
    await admin.flushall();
  },
});

eventBusContract('Redis Cluster (3 masters)', {
  make: async () => new RedisEventBus(new Cluster(cluster.nodes), { ...contractRetention, ownsClient: true }),
  reset: async () => {
    const admin = new Cluster(cluster.nodes);
    admins.push(admin);
    await admin.ping();
    await Promise.all(admin.nodes('master').map((n) => n.flushall()));
  },
});

describe('RedisEventBus on Redis', () => {
  it('keeps delivering live events after the subscriber reconnects, the missed ones included, in order', async () => {
    const bus = new RedisEventBus(new Redis(server.url), { ...contractRetention, ownsClient: true });
    const other = new RedisEventBus(new Redis(server.url), { ...contractRetention, ownsClient: true });
    const uid = `reconnect-${Date.now()}`;
    const seen: string[] = [];
    const off = await bus.subscribe(uid, (e) => seen.push(e.cursor));
    const first = await other.publish(uid, { event: 'session.notice', data: { level: 'info', message: '1' } });
    const waitFor = async (n: number) => {
      const end = Date.now() + 5_000;
      while (seen.length < n) {
        if (Date.now() > end) throw new Error(`saw ${seen.length} of ${n}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    };
    await waitFor(1);
    // Kill the subscriber's connection from the server side, publish while it is away.
    const admin = new Redis(server.url);
    admins.push(admin);
    const list = (await admin.client('LIST')) as string;
    const subIds = list
      .split('\n')
      .filter((l) => l.includes('cmd=ssubscribe') || /sub=\d+ psub=\d+ ssub=[1-9]/.test(l))
      .map((l) => /id=(\d+)/.exec(l)?.[1])
      .filter(Boolean) as string[];
    expect(subIds.length).toBeGreaterThan(0);
    for (const id of subIds) await admin.client('KILL', 'ID', id);
    const during = await other.publish(uid, { event: 'session.notice', data: { level: 'info', message: '2' } });
    await waitFor(2);
    const after = await other.publish(uid, { event: 'session.notice', data: { level: 'info', message: '3' } });
    await waitFor(3);
    expect(seen).toEqual([first.cursor, during.cursor, after.cursor]);
    await off();
    await Promise.all([bus.close(), other.close()]);
  });
});
