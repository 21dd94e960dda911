import { closeRedis, openRedis, type RedisClient } from '@livebus/publisher/redis';
import { waitFor } from '@livebus/test-support';
import { RedisProbe } from '../src/redis/redis-probe';
import { type LoadingRedis, startLoadingRedis } from './loading-redis';

// A Redis that restarted and loads its dataset answers every connection, and answers LOADING
// (INFO says `loading:1`): ioredis's ready check waits and asks again, so the connection stays in
// status 'connect' until the load is done. The gateway's RedisProbe on a real ioredis client
// (openRedis, the gateway's options) against a fake Redis that loads until told (loading-redis.ts).
let redis: LoadingRedis;
let client: RedisClient | undefined;
let probe: RedisProbe | undefined;

beforeEach(async () => {
  redis = await startLoadingRedis();
});

afterEach(async () => {
  probe?.stop();
  if (client) await closeRedis(client);
  client = undefined;
  await redis.close();
});

describe('RedisProbe on a Redis loading its dataset', () => {
  it('keeps the connection that waits in connect while Redis says it is loading, and tells it loading until it is ready', async () => {
    client = openRedis(`redis://127.0.0.1:${redis.port}`, { role: 'gateway', name: 'probe-loading' });
    const told: string[] = [];
    probe = new RedisProbe(client, { intervalMs: 50, reconnectAfterRounds: 3, onLoading: (why) => told.push(why) });
    probe.start();
    // Fifteen of the probe's rounds (five times its bound), or a second connection: the first one replaced.
    await waitFor(
      () => redis.sectionInfos() >= 15 || redis.connections() > 1,
      'fifteen rounds or a replacement',
      20_000,
    );
    expect(redis.connections()).toBe(1);
    expect(client.status).toBe('connect');
    expect([probe.answering, probe.loading]).toEqual([false, true]);
    expect(told[0]).toBe('Redis is loading its dataset (LOADING)');

    // Loaded: ioredis's ready check asks again after loading_eta_seconds (1 s here), and the
    // connection turns ready. (Rounds meanwhile would count: INFO says loading:0, see the unit test.)
    probe.stop();
    redis.loaded();
    await waitFor(() => client?.status === 'ready', 'the ready check passed', 20_000);
    await probe.probe();
    expect([redis.connections(), probe.answering, probe.loading]).toEqual([1, true, false]);
  }, 30_000);

  it('tells a connection that is ready and answered LOADING not answering (loading), and keeps it', async () => {
    redis.loaded();
    client = openRedis(`redis://127.0.0.1:${redis.port}`, { role: 'gateway', name: 'probe-reload' });
    const told: string[] = [];
    probe = new RedisProbe(client, { timeoutMs: 2_000, reconnectAfterRounds: 2, onLoading: (why) => told.push(why) });
    await waitFor(() => client?.status === 'ready', 'ready', 20_000);
    await probe.probe();
    expect([probe.answering, probe.loading]).toEqual([true, false]);
    redis.reload();
    for (let round = 0; round < 4; round++) await probe.probe();
    expect([probe.answering, probe.loading, told.length]).toEqual([false, true, 4]);
    expect([redis.connections(), client.status]).toEqual([1, 'ready']);
    redis.loaded();
    await probe.probe();
    expect([probe.answering, probe.loading]).toEqual([true, false]);
  }, 30_000);
});
