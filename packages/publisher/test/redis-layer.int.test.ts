import {
  type RedisClusterHandle,
  type RedisServerHandle,
  startRedisCluster,
  startRedisServer,
  waitFor,
} from '@livebus/test-support';
import { Redis } from 'ioredis';
import { createPublisher } from '../src';
import { closeRedis, openRedis, RedisScript, redisRetryDelayMs, streamScripts, userKeys } from '../src/redis';

const progress = (percent: number) => ({
  event: 'task.progress_update' as const,
  data: { task_id: 't1', status: 'running' as const, progress: percent },
});

let server: RedisServerHandle;
let admin: Redis;
beforeAll(async () => {
  server = await startRedisServer();
  admin = new Redis(server.url);
});
afterAll(async () => {
  admin.disconnect();
  await server.stop();
});

describe('openRedis', () => {
  it('names the connection livebus-<name> and reconnects on the one policy', async () => {
    const client = openRedis(server.url, { role: 'gateway', name: 'gw-7' });
    await client.ping();
    const list = (await admin.client('LIST')) as string;
    expect(list).toContain('name=livebus-gw-7 ');
    expect([1, 2, 3, 4, 10].map(redisRetryDelayMs)).toEqual([50, 100, 200, 200, 200]);
    await closeRedis(client);
  });

  it('gives a BullMQ worker connection maxRetriesPerRequest null, the others 0', async () => {
    const worker = openRedis(server.url, { role: 'bullmq-worker' });
    const tasks = openRedis(server.url, { role: 'tasks' });
    expect((worker as Redis).options.maxRetriesPerRequest).toBeNull();
    expect((tasks as Redis).options.maxRetriesPerRequest).toBe(0);
    await Promise.all([closeRedis(worker), closeRedis(tasks)]);
  });

  it('a publisher connection connects on its first command, not before', async () => {
    const client = openRedis(server.url, { role: 'publisher' });
    expect(client.status).toBe('wait');
    await client.ping();
    expect(client.status).toBe('ready');
    await closeRedis(client);
  });

  it('a start probe connects when told to, within its own connect timeout', async () => {
    const probe = openRedis(server.url, { role: 'start-probe', name: 'gw-7-start', connectTimeoutMs: 500 });
    expect(probe.status).toBe('wait');
    expect((probe as Redis).options.connectTimeout).toBe(500);
    await probe.connect();
    expect(await probe.ping()).toBe('PONG');
    await closeRedis(probe);
  });
});

describe('the one way to run Lua: scripts', () => {
  it('the publisher stores events with scripts, leaving no function library on the server', async () => {
    const p = createPublisher({ redisUrl: server.url });
    await p.publish('layer-u1', progress(1));
    expect(await admin.call('FUNCTION', 'LIST')).toEqual([]);
    await p.close();
  });

  it('runs again after SCRIPT FLUSH (EVAL carries the source to a node that lost it)', async () => {
    const p = createPublisher({ redis: admin });
    await p.publish('layer-flush', progress(1));
    await admin.script('FLUSH');
    const after = await p.publish('layer-flush', progress(2));
    expect(after.cursor.endsWith(':2')).toBe(true);
    expect(await admin.xlen(userKeys('layer-flush').stream)).toBe(2);
    await p.close();
  });

  it('a connection loads every script when it is ready, and again after a reconnect (a restarted Redis has none)', async () => {
    const shas = [...RedisScript.all].map((s) => s.sha);
    expect(shas).toContain(streamScripts.readSince.sha);
    const known = async () => ((await admin.script('EXISTS', ...shas)) as number[]).every((x) => x === 1);
    await admin.script('FLUSH');
    const client = openRedis(server.url, { role: 'gateway' });
    try {
      await waitFor(known, 'every script loaded at start');
      await admin.script('FLUSH');
      (client as Redis).disconnect(true);
      await waitFor(known, 'every script loaded after the reconnect');
    } finally {
      await closeRedis(client);
    }
    // A BullMQ worker's connection loads none (BullMQ has its own).
    await admin.script('FLUSH');
    const worker = openRedis(server.url, { role: 'bullmq-worker' });
    await worker.ping();
    expect(await admin.script('EXISTS', streamScripts.readSince.sha)).toEqual([0]);
    await closeRedis(worker);
  });

  it('a RedisScript is known by its SHA1 once run', async () => {
    const script = new RedisScript("return redis.call('GET', KEYS[1])");
    await admin.set('layer-k', 'v');
    expect(await script.run(admin, ['layer-k'], [])).toBe('v');
    expect(await admin.script('EXISTS', script.sha)).toEqual([1]);
  });
});

describe('openRedis on a Redis Cluster', () => {
  let cluster: RedisClusterHandle;
  beforeAll(async () => {
    cluster = await startRedisCluster();
  }, 60_000);
  afterAll(() => cluster.stop());

  it('reaches every slot through one seed node, and runs the stream scripts after a new node lost them', async () => {
    const client = openRedis(cluster.url, { cluster: true, role: 'gateway' });
    const p = createPublisher({ redis: client });
    const users = Array.from({ length: 8 }, (_, i) => `layer-c-${i}`);
    for (const u of users) await p.publish(u, progress(1));
    for (const node of cluster.nodes) {
      const n = new Redis(node);
      await n.script('FLUSH').catch(() => {});
      n.disconnect();
    }
    for (const u of users) expect((await p.publish(u, progress(2))).cursor.endsWith(':2')).toBe(true);
    await p.close();
    await closeRedis(client);
  });

  it('a cluster connection loads every script on each node it adds', async () => {
    for (const node of cluster.nodes) {
      const n = new Redis(node);
      await n.script('FLUSH').catch(() => {});
      n.disconnect();
    }
    const client = openRedis(cluster.url, { cluster: true, role: 'gateway' });
    try {
      await client.ping();
      const sha = streamScripts.readSince.sha;
      for (const node of cluster.nodes) {
        const n = new Redis(node);
        try {
          await waitFor(async () => ((await n.script('EXISTS', sha)) as number[])[0] === 1, `the script on ${node}`);
        } finally {
          n.disconnect();
        }
      }
    } finally {
      await closeRedis(client);
    }
  });
});
