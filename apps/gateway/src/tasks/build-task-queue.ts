import type { GatewayConfig } from '../config';
import { BullMqTaskQueue } from './bullmq-task-queue';
import { RedisTaskStore } from './redis-task-store';
import type { TaskQueue } from './task-queue';
import { closeTaskRedis, openTaskRedis } from './task-redis';

/**
 * The gateway's BullMQ task queue on its own connection to REDIS_URL, or nothing when tasks
 * are off (TASKS_ENABLED=false) or there is no Redis (the gateway then makes the
 * embedded queue itself). `close` closes the connection, after the gateway closed the queue.
 */
export function buildRedisTaskQueue(
  config: GatewayConfig,
): { queue: TaskQueue; close: () => Promise<void> } | undefined {
  if (!config.redisUrl || !config.tasksEnabled) return undefined;
  const redis = openTaskRedis(config, 'tasks');
  const store = new RedisTaskStore(redis, { ttlMs: config.taskTtlS * 1000 });
  const queue = new BullMqTaskQueue({
    connection: redis,
    redis,
    store,
    attempts: config.taskAttempts,
    backoffMs: config.taskBackoffMs,
  });
  return { queue, close: () => closeTaskRedis(redis) };
}
