import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { GatewayConfig } from '../config';
import type { RedisClient } from '../redis/redis-script';

/**
 * Opens a Redis connection for tasks from REDIS_URL / REDIS_CLUSTER. `forBullMqWorker`
 * gives the `maxRetriesPerRequest: null` BullMQ requires of a worker's connection (its
 * blocking reads must wait through a reconnect instead of failing).
 */
export function openTaskRedis(
  config: GatewayConfig,
  name: string,
  options: { forBullMqWorker?: boolean } = {},
): RedisClient {
  if (!config.redisUrl) throw new TypeError('tasks on Redis need REDIS_URL');
  // Reconnect attempts 50, 100, then every 200 ms, as the gateway's own client: a command
  // fails at the next failed attempt (so a TASK.* call during an outage answers
  // `unavailable` in well under a second), yet one that meets a connection Redis just
  // closed waits for the reconnect that follows and succeeds.
  const retryStrategy = (times: number) => Math.min(50 * 2 ** (times - 1), 200);
  const redisOptions: RedisOptions = {
    maxRetriesPerRequest: options.forBullMqWorker ? null : 0,
    enableOfflineQueue: true,
    connectTimeout: 2_000,
    retryStrategy,
    connectionName: `livebus-${config.instanceId}-${name}`,
  };
  const client = config.redisCluster
    ? new Cluster([config.redisUrl], {
        redisOptions,
        clusterRetryStrategy: retryStrategy,
        ...(options.forBullMqWorker ? { maxRetriesPerRequest: null } : {}),
      })
    : new Redis(config.redisUrl, redisOptions);
  client.on('error', () => {
    // ioredis reconnects by itself; failed commands surface where they were issued.
  });
  return client;
}

/** Closes a task connection, politely if it is up. */
export async function closeTaskRedis(client: RedisClient): Promise<void> {
  if (client.status === 'ready') await client.quit().catch(() => client.disconnect());
  else client.disconnect();
}
