import { endSlotRefreshes, type RedisClient } from '@livebus/publisher/redis';
import { type RedisClusterHandle, type RedisServerHandle, startRedisBackends } from '@livebus/test-support';
import { Cluster, Redis } from 'ioredis';

/** The Redis backends every fleet contract runs against, started once per test file. */
export interface FleetBackend {
  readonly name: string;
  /** The REDIS_URL a gateway is given (a seed node for the cluster); set once beforeAll ran. */
  readonly url: string;
  /**
   * A new connection (one per simulated instance); closed by {@link useFleetBackends}.
   * `blocking` gives the `maxRetriesPerRequest: null` a BullMQ worker requires.
   */
  connect(options?: { blocking?: boolean }): RedisClient;
  /** Deletes every key (on every master of a cluster): a test that shares fixed keys starts clean. */
  flush(): Promise<void>;
}

/**
 * Starts a standalone Redis and a three-master Redis Cluster for the file, and
 * returns them (filled in by beforeAll). Connections made with `connect` are
 * closed, and the servers stopped, by afterAll.
 */
export function useFleetBackends(): { standalone: FleetBackend; cluster: FleetBackend } {
  let server: RedisServerHandle;
  let cluster: RedisClusterHandle;
  const clients: RedisClient[] = [];
  beforeAll(async () => {
    ({ server, cluster } = await startRedisBackends());
  }, 60_000);
  afterAll(async () => {
    // endSlotRefreshes: a Cluster closed while its slot map is read would keep the process alive.
    for (const c of clients) {
      c.disconnect();
      endSlotRefreshes(c);
    }
    await Promise.all([server?.stop(), cluster?.stop()]);
  });
  const track = (c: RedisClient) => {
    clients.push(c);
    return c;
  };
  return {
    standalone: {
      name: 'standalone Redis',
      get url() {
        return server.url;
      },
      connect: (o = {}) => track(new Redis(server.url, o.blocking ? { maxRetriesPerRequest: null } : {})),
      flush: async () => {
        const c = new Redis(server.url);
        await c.flushall();
        c.disconnect();
      },
    },
    cluster: {
      name: 'Redis Cluster',
      get url() {
        return cluster.url;
      },
      connect: (o = {}) => {
        const retries = o.blocking ? { maxRetriesPerRequest: null } : {};
        return track(new Cluster([...cluster.nodes], { redisOptions: retries, ...retries }));
      },
      flush: async () => {
        const c = new Cluster([...cluster.nodes]);
        await new Promise((resolve) => c.once('ready', resolve));
        await Promise.all(c.nodes('master').map((n) => n.flushall()));
        c.disconnect();
        endSlotRefreshes(c);
      },
    },
  };
}
