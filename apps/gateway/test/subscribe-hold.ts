import { createConnection, createServer, type Server, type Socket } from 'node:net';

/** A proxy to Redis that can hold a connection's commands from its SUBSCRIBE to `channel` on, and cut every connection. */
export interface SubscribeHold {
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

/**
 * Starts a {@link SubscribeHold} in front of the Redis on `targetPort`. `holding`: holds from the
 * first SUBSCRIBE on (what a test that holds a start needs), else only once told to.
 */
export async function holdSubscribe(
  targetPort: number,
  channel: string,
  options: { holding?: boolean } = {},
): Promise<SubscribeHold> {
  // RESP as ioredis writes it: `*2\r\n$9\r\nsubscribe\r\n$<n>\r\n<channel>\r\n`.
  const command = `$9\r\nsubscribe\r\n$${Buffer.byteLength(channel)}\r\n${channel}\r\n`.toLowerCase();
  const sockets = new Set<Socket>();
  const held = new Set<{ upstream: Socket; chunks: Buffer[] }>();
  let holding = options.holding ?? false;
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
