import { closeRedis, openRedis, type RedisClient } from '@livebus/publisher/redis';
import type { GatewayConfig } from '../config';

/**
 * Opens a Redis connection for tasks from REDIS_URL / REDIS_CLUSTER, with the fleet's
 * one retry policy (`openRedis`): a TASK.* call during an outage answers `unavailable`
 * in well under a second, yet one that meets a connection Redis just closed waits for
 * the reconnect that follows and succeeds. `forBullMqWorker` gives the
 * `maxRetriesPerRequest: null` BullMQ requires of a worker's connection (its blocking
 * reads must wait through a reconnect instead of failing).
 */
export function openTaskRedis(
  config: GatewayConfig,
  name: string,
  options: { forBullMqWorker?: boolean } = {},
): RedisClient {
  if (!config.redisUrl) throw new TypeError('tasks on Redis need REDIS_URL');
  return openRedis(config.redisUrl, {
    cluster: config.redisCluster,
    role: options.forBullMqWorker ? 'bullmq-worker' : 'tasks',
    name: `${config.instanceId}-${name}`,
  });
}

/** Closes a task connection, politely if it is up. */
export const closeTaskRedis: (client: RedisClient, timeoutMs?: number) => Promise<void> = closeRedis;
