import { createConnection, createServer, type Socket } from 'node:net';

/** A stand-in for the ALB in front of a fleet: TCP, round robin, skipping backends that refuse. */
export interface Balancer {
  readonly port: number;
  /** Replaces the backend list (a deploy adds and removes instances). */
  setBackends(ports: readonly number[]): void;
  /** Connections currently open, per backend port. */
  connectionsPer(): Map<number, number>;
  close(): Promise<void>;
}

/**
 * Starts a round-robin TCP balancer on a free port. Each new connection goes to
 * the next backend that accepts it; a backend that refuses (a killed instance)
 * is skipped, as an ALB's health checks would eventually do.
 */
export async function startBalancer(backends: readonly number[]): Promise<Balancer> {
  let ports = [...backends];
  let next = 0;
  const open = new Map<Socket, number>();

  const dial = (client: Socket, tried: number) => {
    if (tried >= ports.length || ports.length === 0) {
      client.destroy();
      return;
    }
    const port = ports[next++ % ports.length] as number;
    const upstream = createConnection({ port, host: '127.0.0.1' });
    let connected = false;
    upstream.once('error', () => {
      // Refused before connecting: a dead instance, try the next one.
      if (!connected) dial(client, tried + 1);
    });
    upstream.once('connect', () => {
      connected = true;
      open.set(client, port);
      client.pipe(upstream);
      upstream.pipe(client);
      client.resume();
      const end = () => {
        open.delete(client);
        client.destroy();
        upstream.destroy();
      };
      client.once('close', end);
      upstream.once('close', end);
      client.on('error', end);
      upstream.on('error', end);
    });
  };

  const server = createServer({ pauseOnConnect: true }, (client) => {
    client.on('error', () => client.destroy());
    dial(client, 0);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('no address');
  return {
    port: address.port,
    setBackends(list) {
      ports = [...list];
    },
    connectionsPer() {
      const counts = new Map<number, number>();
      for (const port of open.values()) counts.set(port, (counts.get(port) ?? 0) + 1);
      return counts;
    },
    async close() {
      for (const client of open.keys()) client.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
