import { type RedisServerHandle, startRedisServer } from '@livebus/test-support';
import { Redis } from 'ioredis';
import { createPublisher, RedisStreamReader, userKeys } from '../src';

const notice = (i: number) => ({
  event: 'session.notice' as const,
  data: { level: 'info' as const, message: String(i) },
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

describe('RedisStreamReader', () => {
  it('readRetained: what the stream holds past offsets skipped at a failover, where readSince says gap', async () => {
    const p = createPublisher({ redisUrl: server.url });
    try {
      const first = await p.publish('holes', notice(1));
      await p.publish('holes', notice(2));
      // What a promoted replica's first append does (FAILOVER_OFFSET_SKIP), without a failover.
      const meta = userKeys('holes').meta;
      await admin.hset(meta, 'o', Number(await admin.hget(meta, 'o')) + 1_000_000);
      await p.publish('holes', notice(3));
      const reader = new RedisStreamReader(admin);
      expect((await reader.readSince('holes', first.cursor)).status).toBe('gap');
      const retained = await reader.readRetained('holes', first.cursor);
      expect(retained.status).toBe('resumed');
      expect(retained.events.map((e) => (e.data as { message: string }).message)).toEqual(['2', '3']);
      // Still a gap for a cursor of another epoch.
      expect((await reader.readRetained('holes', 'otherepoch:1')).status).toBe('gap');
    } finally {
      await p.close();
    }
  });
});
