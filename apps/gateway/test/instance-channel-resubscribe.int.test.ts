import { closeRedis, instanceKeys, openRedis } from '@livebus/publisher/redis';
import { type RedisServerHandle, startRedisServer, waitFor } from '@livebus/test-support';
import type { ControlMessage } from '../src/fleet/instances/instance-channel';
import { RedisInstanceChannel } from '../src/fleet/instances/redis-instance-channel';
import { holdSubscribe } from './subscribe-hold';

// The instance channel's subscriber on a standalone Redis, cut again while the SUBSCRIBE of its
// reconnect waits for Redis's answer. ioredis's own resubscribe (5.11) drops that command's
// promise, so the cut was a rejection nobody handled: the gateway's process ended there. Held
// deterministically, not timed: the gateway's connection reaches Redis through a proxy that,
// once told to, holds a connection's commands from its SUBSCRIBE to the channel on.

let redis: RedisServerHandle;
beforeAll(async () => {
  redis = await startRedisServer();
});
afterAll(() => redis.stop());

const INSTANCE = 'gw-channel-resubscribe';

describe("RedisInstanceChannel's subscriber on a standalone Redis, cut twice", () => {
  it('survives a cut while its SUBSCRIBE after a reconnect waits, and subscribes again at the next reconnect', async () => {
    const proxy = await holdSubscribe(redis.port, instanceKeys.channel(INSTANCE));
    // The gateway's connection (compose.ts): its subscriber is a duplicate, through the proxy.
    const gatewayRedis = openRedis(`redis://127.0.0.1:${proxy.port}`, { role: 'gateway', name: INSTANCE });
    const channel = new RedisInstanceChannel(gatewayRedis, INSTANCE);
    // Another instance, straight to Redis.
    const otherRedis = openRedis(redis.url, { role: 'gateway', name: 'gw-other' });
    const other = new RedisInstanceChannel(otherRedis, 'gw-other');
    const got: ControlMessage[] = [];
    try {
      await channel.listen((m) => got.push(m)); // answered: nothing held yet
      proxy.hold(true);
      proxy.cut();
      // The subscriber reconnects, and its SUBSCRIBE to the channel waits in the proxy.
      await waitFor(() => proxy.holding, 'the SUBSCRIBE after the reconnect, held');
      const acceptedBefore = proxy.accepted;
      proxy.cut(); // that SUBSCRIBE is cut unanswered
      // Connected again after the cut: ioredis handled the close (and the held command) before.
      // A rejection nobody handled there fails this test: jest-circus 30 listens on the real
      // process and reports it as an error of the test running (the test's `process` is the
      // sandbox's, whose listeners never hear it); the gateway's process would have ended.
      await waitFor(() => proxy.accepted > acceptedBefore, 'a connection after the second cut');
      proxy.hold(false);
      // The channel is subscribed again: a control message sent from elsewhere reaches the listener.
      const replace: ControlMessage = { type: 'replace', uid: 'u-1', session_id: 's-1' };
      await waitFor(
        async () => {
          await other.send(INSTANCE, replace);
          return got.length > 0;
        },
        'a control message on the channel after the reconnects',
        10_000,
        100,
      );
      expect(got[0]).toEqual(replace);
    } finally {
      await channel.close();
      await other.close();
      await closeRedis(gatewayRedis);
      await closeRedis(otherRedis);
      await proxy.close();
    }
  }, 30_000);
});
