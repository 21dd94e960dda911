import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { instanceKeys } from '@livebus/publisher/redis';
import { askRedis, type RedisServerHandle, startRedisServer } from '@livebus/test-support';
import { startCli } from './task-processes';

// `livebus-gateway` (dist/main.js) told to stop while its listen() runs: the stop waits for the
// listen, then drains (main.ts). Held deterministically, not timed: the gateway reaches Redis
// through a proxy that holds its instance channel's SUBSCRIBE, which listen() awaits after the
// main port listens and before the timers and listeners start (gateway.ts listenGateway), until
// the test releases it. A preloaded fixture (fixtures/signal-seen.cjs) prints a line when SIGTERM
// reaches the process's listeners: once read, the CLI's handler has run too.

/** A proxy to Redis that holds a connection's commands from its SUBSCRIBE to `channel` on, until {@link release}. */
interface SubscribeHold {
  readonly port: number;
  /** Whether a SUBSCRIBE to the channel arrived and is held. */
  readonly holding: boolean;
  /** Sends what was held, and forwards from then on. */
  release(): void;
  close(): Promise<void>;
}

async function holdSubscribe(targetPort: number, channel: string): Promise<SubscribeHold> {
  // RESP as ioredis writes it: `*2\r\n$9\r\nsubscribe\r\n$<n>\r\n<channel>\r\n`.
  const command = `$9\r\nsubscribe\r\n$${Buffer.byteLength(channel)}\r\n${channel}\r\n`.toLowerCase();
  const sockets = new Set<Socket>();
  const held: Array<{ upstream: Socket; chunks: Buffer[] }> = [];
  let released = false;
  const server: Server = createServer((client) => {
    const upstream = createConnection({ port: targetPort, host: '127.0.0.1' });
    sockets.add(client).add(upstream);
    let hold: { upstream: Socket; chunks: Buffer[] } | undefined;
    client.on('data', (chunk: Buffer) => {
      if (!hold && !released && chunk.toString('latin1').toLowerCase().includes(command)) {
        hold = { upstream, chunks: [] };
        held.push(hold);
      }
      if (hold && !released) hold.chunks.push(chunk);
      else upstream.write(chunk);
    });
    upstream.on('data', (chunk) => client.write(chunk));
    const end = () => {
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
    get holding() {
      return held.length > 0 && !released;
    },
    release: () => {
      released = true;
      for (const { upstream, chunks } of held) for (const chunk of chunks) upstream.write(chunk);
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

const INSTANCE = 'gw-stop-while-listening';

describe('a gateway told to stop (SIGTERM) while its listen() runs', () => {
  it('waits for the listen to finish, then drains, retires from the fleet and exits 0', async () => {
    const hold = await holdSubscribe(redis.port, instanceKeys.channel(INSTANCE));
    const cli = startCli([], {
      PORT: '0',
      REDIS_URL: `redis://127.0.0.1:${hold.port}`,
      INSTANCE_ID: INSTANCE,
      SHUTDOWN_GRACE_MS: '2000',
      NODE_OPTIONS: `--require ${join(__dirname, 'fixtures', 'signal-seen.cjs')}`,
    });
    let code: number | null;
    try {
      // In listen(): the main port listens, the instance channel's SUBSCRIBE waits in the proxy.
      await cli.waitUntil(() => hold.holding, "listen()'s SUBSCRIBE to the instance channel");
      expect(cli.lines.filter((l) => l.event === 'gateway_listening')).toEqual([]);
      cli.child.kill('SIGTERM');
      await cli.waitForLine((l) => l.livebus_test === 'signal', 'SIGTERM at the handlers');
      // The stop is asked; the listen is still held. Let it finish.
      hold.release();
      code = await cli.exited;
    } finally {
      if (cli.child.exitCode === null && cli.child.signalCode === null) await cli.stop('SIGKILL');
      await hold.close();
    }
    // Listened first (the whole start, timers included), then drained, from start to end.
    const moments: string[] = [
      'signal SIGTERM',
      'gateway_listening',
      'gateway_shutdown_start',
      'gateway_shutdown_complete',
    ];
    const order = cli.lines
      .map((l) => (l.livebus_test === 'signal' ? `signal ${String(l.signal)}` : String(l.event)))
      .filter((moment) => moments.includes(moment));
    expect(order).toEqual(moments);
    expect(cli.lines.find((l) => l.event === 'gateway_shutdown_start')).toMatchObject({ reason: 'SIGTERM' });
    expect(code).toBe(0);
    expect(cli.stderr()).toBe('');
    // Nothing of the start outlived the drain: listen() started the fleet heartbeat (its first beat
    // announces the instance), and the drain after it retired the instance; nothing announced it again.
    expect((await askRedis(redis.port, 'exists', instanceKeys.info(INSTANCE))).trim()).toBe('0');
    expect((await askRedis(redis.port, 'zscore', instanceKeys.list(), INSTANCE)).trim()).toBe('');
  }, 30_000);
});
