import { createConnection, createServer, type Socket } from 'node:net';

/**
 * A TCP proxy between a client and a server, for cutting or freezing the
 * network in tests without touching either side.
 */
export interface TcpProxy {
  readonly port: number;
  /**
   * Stops reading in both directions; connections stay open. Peers see silence
   * (a dead peer) and, once kernel buffers fill, back-pressure (a slow consumer).
   */
  freeze(): void;
  /** Resumes forwarding. */
  thaw(): void;
  /**
   * Stops forwarding the server's replies on the connections open now (requests still
   * reach the server): with {@link dropAll} after it, a reply lost after the server
   * applied the command. Connections opened later forward both ways.
   */
  holdReplies(): void;
  /** Destroys every connection at once (a network cut: the peers see an abnormal close). */
  dropAll(): void;
  /**
   * Sends connections opened from now on to `127.0.0.1:port`; those open now stay where they
   * are. A DNS endpoint after a failover (ElastiCache's primary endpoint): new connections
   * reach the new primary, old ones stay on the demoted node.
   */
  retarget(port: number): void;
  /** Connections currently open through the proxy. */
  readonly connections: number;
  close(): Promise<void>;
}

/** Starts a proxy on a free port forwarding to `127.0.0.1:targetPort`. */
export async function startTcpProxy(targetPort: number): Promise<TcpProxy> {
  const pairs = new Set<[Socket, Socket]>();
  let frozen = false;
  let target = targetPort;
  const server = createServer((client) => {
    const upstream = createConnection({ port: target, host: '127.0.0.1' });
    const pair: [Socket, Socket] = [client, upstream];
    pairs.add(pair);
    // Plain 'data' forwarding (not pipe) so pause() reliably stops reading.
    client.on('data', (chunk) => upstream.write(chunk));
    upstream.on('data', (chunk) => client.write(chunk));
    if (frozen) {
      client.pause();
      upstream.pause();
    }
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('close', end);
    upstream.on('close', end);
    client.on('error', end);
    upstream.on('error', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (!address || typeof address !== 'object') throw new Error('no address');
  return {
    port: address.port,
    freeze: () => {
      frozen = true;
      for (const [a, b] of pairs) {
        a.pause();
        b.pause();
      }
    },
    thaw: () => {
      frozen = false;
      for (const [a, b] of pairs) {
        a.resume();
        b.resume();
      }
    },
    holdReplies: () => {
      for (const [, upstream] of pairs) upstream.pause();
    },
    dropAll: () => {
      for (const [a, b] of pairs) {
        a.resetAndDestroy();
        b.resetAndDestroy();
      }
      pairs.clear();
    },
    retarget: (port) => {
      target = port;
    },
    get connections() {
      return pairs.size;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const [a, b] of pairs) {
          a.destroy();
          b.destroy();
        }
        pairs.clear();
        server.close(() => resolve());
      }),
  };
}
