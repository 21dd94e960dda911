import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { closeRedis, instanceKeys, openRedis } from '@livebus/publisher/redis';
import { type RedisServerHandle, startRedisServer, waitFor } from '@livebus/test-support';
import type { ControlMessage } from '../src/fleet/instances/instance-channel';
import { RedisInstanceChannel } from '../src/fleet/instances/redis-instance-channel';

// The instance channel's subscriber on a standalone Redis, cut again while the SUBSCRIBE of its
// reconnect waits for Redis's answer. ioredis's own resubscribe (5.11) drops that command's
// promise, so the cut was a rejection nobody handled: the gateway's process ended there. Held
// deterministically, not timed: the gateway's connection reaches Redis through a proxy that,
// once told to, holds a connection's commands from its SUBSCRIBE to the channel on.

/** A proxy to Redis that can hold a connection's commands from its SUBSCRIBE to `channel` on, and cut every connection. */
interface SubscribeHold {
  readonly port: number;
  /** Connections the proxy accepted so far. */
  readonly accepted: number;
  /** Whether a SUBSCRIBE to the channel is held on a connection still open. */
  readonly holding: boolean;
  /** From now on, holds a connection's SUBSCRIBE to the channel and what follows it (`false`: sends what was held, forwards from then on). */
  hold(on: boolean): void;
  /** Destroys every connection at once (a network cut: the peers see an abnormal close). */
  cut(): void;
  close(): Promise<void>;
}

async function holdSubscribe(targetPort: number, channel: string): Promise<SubscribeHold> {
  // RESP as ioredis writes it: `*2\r\n$9\r\nsubscribe\r\n$<n>\r\n<channel>\r\n`.
  const command = `$9\r\nsubscribe\r\n$${Buffer.byteLength(channel)}\r\n${channel}\r\n`.toLowerCase();
  const sockets = new Set<Socket>();
  const held = new Set<{ upstream: Socket; chunks: Buffer[] }>();
  let holding = false;
  let accepted = 0;
  const server: Server = createServer((client) => {
    accepted++;
    const upstream = createConnection({ port: targetPort, host: '127.0.0.1' });
    sockets.add(client).add(upstream);
    let hold: { upstream: Socket; chunks: Buffer[] } | undefined;
    client.on('data', (chunk: Buffer) => {
      if (!hold && holding && chunk.toString('latin1').toLowerCase().includes(command)) {
        hold = { upstream, chunks: [] };
        held.add(hold);
      }
      if (hold && held.has(hold)) hold.chunks.push(chunk);
      else upstream.write(chunk);
    });
    upstream.on('data', (chunk) => client.write(chunk));
    const end = () => {
      if (hold) held.delete(hold);
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    for (const s of [client, upstream]) s.on('close', end).on('error', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    get accepted() {
      return accepted;
    },
    get holding() {
      return held.size > 0;
    },
    hold: (on) => {
      holding = on;
      if (on) return;
      for (const h of held) for (const chunk of h.chunks) h.upstream.write(chunk);
      held.clear();
    },
    cut: () => {
      for (const s of sockets) s.resetAndDestroy();
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

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
