import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { GatewayConfig } from '../config';
import type { RedisClient } from '../fleet/redis-script';

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
  const redisOptions: RedisOptions = {
    maxRetriesPerRequest: options.forBullMqWorker ? null : 2,
    enableOfflineQueue: true,
    connectTimeout: 5_000,
    retryStrategy: (times) => Math.min(times * 200, 2_000),
    connectionName: `livebus-${config.instanceId}-${name}`,
  };
  const client = config.redisCluster
    ? new Cluster([config.redisUrl], {
        redisOptions,
        clusterRetryStrategy: (times) => Math.min(times * 200, 2_000),
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
