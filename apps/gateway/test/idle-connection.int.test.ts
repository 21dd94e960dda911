import { createPublisher } from '@livebus/publisher';
import { type RedisServerHandle, startRedisServer, waitFor } from '@livebus/test-support';
import { Redis } from 'ioredis';
import { composePorts } from '../src/compose';
import { connectAs, httpJson, startGateway, type TestGateway } from './helpers';

// A store connection lost after idling: Redis closes it server-side (CLIENT KILL,
// as an idle timeout or a failover would). The next use must reconnect and
// succeed, never fail with "connection not available".

let redis: RedisServerHandle;
let admin: Redis;
let t: TestGateway;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const note = (m: string) => ({ event: 'session.notice' as const, data: { level: 'info' as const, message: m } });

beforeAll(async () => {
  redis = await startRedisServer();
  admin = new Redis(redis.url);
  t = await startGateway({ instanceId: 'gw-idle', redisUrl: redis.url }, composePorts);
});
afterAll(async () => {
  await t.close();
  admin.disconnect();
  await redis.stop();
});

/** The ids of the connections whose name is `name`. */
async function connectionsNamed(name: string): Promise<string[]> {
  const list = (await admin.client('LIST')) as string;
  return list
    .split('\n')
    .filter((line) => line.includes(` name=${name} `))
    .map((line) => /id=(\d+)/.exec(line)?.[1])
    .filter((id): id is string => Boolean(id));
}

/** Waits until at least `count` connections named `name` are open (reconnected after a kill); how many. */
async function waitForConnectionsNamed(name: string, count: number): Promise<number> {
  return waitFor(async () => {
    const n = (await connectionsNamed(name)).length;
    return n >= count ? n : undefined;
  }, `${count} connections named ${name}`);
}

/** Kills every connection whose name is `name` (the gateway's client and its subscriber); how many. */
async function killConnectionsNamed(name: string): Promise<number> {
  const ids = await connectionsNamed(name);
  for (const id of ids) await admin.client('KILL', 'ID', id);
  return ids.length;
}

describe('a Redis connection killed while idle', () => {
  it('is re-established on next use: RPCs and publishes right after each kill succeed, and events still arrive', async () => {
    const { client } = await connectAs(t.url, 'idler');
    const rpcMs: number[] = [];
    expect((await client.call('REGISTRY.register_user', ['idler', 's0', '/'])).type).toBe('rpc_result');
    // The client and its subscriber (at least): each round kills them all once they are all back.
    const open = await waitForConnectionsNamed('livebus-gw-idle', 2);
    for (let round = 1; round <= 5; round++) {
      // Idle (every connection re-established after the last round's kill), then killed from the server side.
      await waitForConnectionsNamed('livebus-gw-idle', open);
      expect(await killConnectionsNamed('livebus-gw-idle')).toBeGreaterThanOrEqual(2);
      // Used at once: the reconnect is under way, the call waits for it instead of failing.
      const started = performance.now();
      const rpc = await client.call('REGISTRY.register_user', ['idler', `s${round}`, '/']);
      expect(rpc).toMatchObject({ type: 'rpc_result' });
      rpcMs.push(Math.round(performance.now() - started));
      const published = await httpJson(`${t.http}/publish`, {
        method: 'POST',
        body: JSON.stringify({ user_id: 'idler', event: note(String(round)) }),
      });
      expect(published).toMatchObject({ status: 202, body: { accepted: true, cursor: expect.any(String) } });
    }
    // The subscriber was killed too: every event still reached the session, once, in order.
    const notices = () => client.events().filter((e) => e.event === 'session.notice');
    await waitFor(() => notices().length >= 5, 'five events', 5_000);
    await sleep(100);
    expect(notices().map((e) => (e.data as { message: string }).message)).toEqual(['1', '2', '3', '4', '5']);
    expect(t.logs.of('rpc_error')).toEqual([]);
    process.stdout.write(`idle connection figures: ${JSON.stringify({ rpcAfterKillMs: rpcMs })}\n`);
    await client.close();
  });

  it('a publisher whose idle connection was killed publishes on the reconnect, without waiting a retry delay', async () => {
    // A retry delay far beyond the test's timeout: a publish that waited one would never
    // settle here, so one that settles was sent again on the reconnect, not after a delay.
    const p = createPublisher({ redisUrl: redis.url }, { retryDelaysMs: [600_000] });
    try {
      await p.publish('idle-pub', note('0'));
      for (let round = 1; round <= 3; round++) {
        await waitForConnectionsNamed('livebus-publisher', 1);
        expect(await killConnectionsNamed('livebus-publisher')).toBe(1);
        await p.publish('idle-pub', note(String(round)));
        expect(p.stats()).toMatchObject({ redis: 'up', waiting: 0, stored: round + 1 });
      }
      expect(p.stats()).toMatchObject({ waiting: 0, queued: 0, dropped: 0, stored: 4 });
    } finally {
      await p.close();
    }
  });
});
