/**
 * The Redis key prefix of everything tasks keep: BullMQ's queue keys (`{lbq}:livebus-tasks:*`),
 * task snapshots and worker heartbeats. The braces are a Redis Cluster hash tag, so every
 * key lands in one slot: BullMQ's Lua scripts touch several keys of a queue at once, which
 * a cluster only allows within one slot.
 */
export const TASK_KEY_PREFIX = '{lbq}';

/** The BullMQ queue name. */
export const TASK_QUEUE_NAME = 'livebus-tasks';

/** The hash holding one task's snapshot. */
export const taskKey = (taskId: string): string => `${TASK_KEY_PREFIX}:task:${taskId}`;

/** Sorted set of worker ids scored by their last heartbeat (ms). */
export const workersKey = `${TASK_KEY_PREFIX}:workers`;
