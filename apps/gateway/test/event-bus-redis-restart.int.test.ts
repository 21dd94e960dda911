import { parseCursor } from '@livebus/protocol';
import { userKeys } from '@livebus/publisher';
import { openRedis, type RedisClient } from '@livebus/publisher/redis';
import { type RedisServerHandle, startRedisServer, waitFor } from '@livebus/test-support';
import type { Redis } from 'ioredis';
import { composePorts } from '../src/compose';
import { RedisEventBus } from '../src/fleet/bus/redis-event-bus';
import { connectAs, httpJson, startGateway, type TestClient, type TestGateway } from './helpers';

// A standalone Redis that restarts EMPTY under a running gateway (docs/reliability.md): the
// sessions open across the loss are told (a reconnect notice, then 1012; their resume hears
// `gap`), once; a session opened after that starts in the new epoch and goes on undisturbed.
const note = (m: string) => ({ event: 'session.notice' as const, data: { level: 'info' as const, message: m } });

let redis: RedisServerHandle;
const gateways: TestGateway[] = [];
const clients: TestClient[] = [];
const buses: RedisEventBus[] = [];
beforeAll(async () => {
  redis = await startRedisServer();
});
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close();
  for (const g of gateways.splice(0)) await g.close();
  for (const b of buses.splice(0)) await b.close();
});
afterAll(() => redis.stop());

async function publish(t: TestGateway, uid: string, message: string): Promise<void> {
  const r = await httpJson(`${t.http}/publish`, {
    method: 'POST',
    body: JSON.stringify({ user_id: uid, event: note(message) }),
  });
  expect(r.status).toBe(202);
}

async function open(t: TestGateway, uid: string) {
  const opened = await connectAs(t.url, uid);
  clients.push(opened.client);
  return opened;
}

const notices = (c: TestClient) => c.frames.filter((f) => f.type === 'notice');

describe('a standalone Redis restarted empty', () => {
  it('the session open across the loss is told once; one opened after it starts in the new epoch: the next event reaches it, no reconnect', async () => {
    const t = await startGateway(
      { instanceId: 'gw-restart-empty', logLevel: 'warn', redisUrl: redis.url },
      composePorts,
    );
    gateways.push(t);
    const uid = `restart-${Date.now()}`;
    const { client: before } = await open(t, uid);
    await publish(t, uid, 'old-1');
    await waitFor(() => before.events().length === 1, 'the old event');
    const oldEpoch = parseCursor(before.events()[0]?.cursor ?? '')?.epoch;

    await redis.kill();
    await redis.restart();
    // The session open across the loss is told, and closed to resume.
    expect((await before.closed).code).toBe(1012);
    expect(notices(before)).toEqual([expect.objectContaining({ kind: 'reconnect' })]);

    // A tab opened now, before the user's next event, starts in the new epoch.
    const { client: after, welcome } = await open(t, uid);
    const start = parseCursor(welcome.resume.cursor);
    expect(welcome.resume.status).toBe('fresh');
    expect(start?.epoch).not.toBe(oldEpoch);
    await publish(t, uid, 'new-1');
    await waitFor(() => after.events().length === 1, 'the new event');
    // One more round trip on the socket: a notice or a close would have come before its pong.
    const ts = Date.now();
    after.send({ type: 'ping', ts });
    await after.next('pong', (p) => p.ts === ts);
    expect(after.events().map((e) => e.cursor)).toEqual([`${start?.epoch}:${(start?.offset ?? 0) + 1}`]);
    expect(notices(after)).toEqual([]);
    expect(after.ws.readyState).toBe(after.ws.OPEN);
  }, 60_000);
});

/**
 * A bus on a client opened as the gateway opens its own (no retries of a command through a
 * reconnect), and its subscriber connection, made on the first listen.
 */
function makeBus(): { bus: RedisEventBus; subscriber: () => Redis } {
  const client = openRedis(redis.url, { role: 'gateway', name: 'bus-restart-test' });
  let sub: Redis | undefined;
  const duplicate = client.duplicate.bind(client) as (...args: unknown[]) => Redis;
  (client as { duplicate: unknown }).duplicate = (...args: unknown[]) => {
    sub = duplicate(...args);
    return sub;
  };
  const bus = new RedisEventBus(client as RedisClient, { ownsClient: true });
  buses.push(bus);
  return {
    bus,
    subscriber: () => {
      if (!sub) throw new Error('no subscriber yet');
      return sub;
    },
  };
}

async function shardChannels(): Promise<string[]> {
  const admin = openRedis(redis.url, { role: 'gateway', name: 'bus-restart-admin' });
  try {
    return ((await admin.call('PUBSUB', 'SHARDCHANNELS')) as string[]).sort();
  } finally {
    admin.disconnect();
  }
}

describe('RedisEventBus on a standalone Redis restarted empty', () => {
  it("once the loss is told, the position is the new epoch's start: the next event tells nothing more", async () => {
    const { bus } = makeBus();
    const uid = `position-${Date.now()}`;
    const lost: string[] = [];
    const seen: string[] = [];
    bus.onStreamLost((user, epoch) => lost.push(`${user}@${epoch}`));
    await bus.listen(uid, (e) => seen.push(e.cursor), null);
    const first = await bus.publish(uid, note('old-1'));
    await waitFor(() => seen.length === 1, 'the old event');
    const oldEpoch = parseCursor(first.cursor)?.epoch;

    await redis.kill();
    await redis.restart();
    await waitFor(() => lost.length === 1, 'the loss told');
    // What a session opened now gets as its welcome's cursor: the new epoch's head.
    const position = bus.position(uid);
    expect(parseCursor(position ?? '')?.epoch).not.toBe(oldEpoch);
    expect(position).toBe(await bus.head(uid));

    const next = await bus.publish(uid, note('new-1'));
    await waitFor(() => seen.length === 2, 'the new event');
    expect(seen).toEqual([first.cursor, next.cursor]);
    expect(lost).toEqual([`${uid}@${oldEpoch}`]);
  }, 30_000);

  it('a user left while the subscriber was away is not subscribed again once it is back', async () => {
    const { bus, subscriber } = makeBus();
    const [bob, carol] = [`left-${Date.now()}`, `stays-${Date.now()}`];
    const listener = () => {};
    await bus.listen(bob, listener, null);
    expect(await shardChannels()).toEqual([userKeys(bob).channel]);

    await redis.kill();
    await waitFor(() => subscriber().status !== 'ready', 'the subscriber to see the outage');
    // The user's last session closes meanwhile: its SUNSUBSCRIBE cannot reach Redis.
    await bus.unlisten(bob, listener, null);
    expect(bus.stats().streams).toBe(0);
    await redis.restart();

    await bus.listen(carol, listener, null);
    await waitFor(
      async () => (await shardChannels()).join() === userKeys(carol).channel,
      'only the user still served subscribed',
    );
    expect(bus.stats().streams).toBe(1);
  }, 30_000);
});
