import type { AppEvent } from '@livebus/protocol';
import type { Registry } from 'prom-client';
import type { GatewayConfig } from '../config';
import type { Logger } from '../logger';
import { MemoryTaskQueue } from './memory-task-queue';
import { MemoryTaskStore } from './memory-task-store';
import { registerTaskMetrics, type TaskMetrics } from './task-metrics';
import type { TaskQueue, TaskQueueHealth } from './task-queue';
import { TaskService } from './task-service';

/** Tasks as one gateway holds them. */
export interface GatewayTasks {
  /** Undefined when tasks are off (TASKS_ENABLED=false): `TASK.*` answer `unavailable`. */
  service: TaskService | undefined;
  /** The `tasks` block of /healthz. */
  health(): { enabled: false } | ({ enabled: true; queue: 'memory' | 'bullmq' } & TaskQueueHealth);
  /** Jobs waiting or delayed in the queue (dashboard); undefined while tasks are off. */
  depth: (() => Promise<number>) | undefined;
  close(): Promise<void>;
}

/** What {@link createGatewayTasks} takes from the gateway. */
export interface GatewayTasksDeps {
  /** A queue built outside (BullMQ, by compose.ts); unset: the embedded in-process queue. */
  queue: TaskQueue | undefined;
  publish: (userId: string, event: AppEvent) => Promise<unknown>;
  logger: Logger;
  registry: Registry;
}

/**
 * Sets up `TASK.*` for a gateway: nothing when TASKS_ENABLED is false (the
 * rollback), the given queue when there is one, else an in-process queue that runs the
 * tasks here and publishes through the gateway's bus.
 */
export function createGatewayTasks(config: GatewayConfig, deps: GatewayTasksDeps): GatewayTasks {
  if (!config.tasksEnabled) {
    return { service: undefined, health: () => ({ enabled: false }), depth: undefined, close: async () => {} };
  }
  let metrics: TaskMetrics | undefined;
  let queue = deps.queue;
  if (!queue) {
    // A queued task counts against TASK_MAX_OPEN_PER_USER while its job is here (holdsOpenSlot).
    let memory: MemoryTaskQueue | undefined;
    const store = new MemoryTaskStore({
      ttlMs: config.taskTtlS * 1000,
      hasJob: (queueJobId) => memory?.hasJob(queueJobId) ?? false,
    });
    memory = new MemoryTaskQueue(store, {
      runner: {
        store,
        publish: deps.publish,
        analysis: { maxBytes: config.taskMaxDocumentBytes, stageDelayMs: config.taskStageDelayMs },
      },
      logger: deps.logger,
      concurrency: config.workerConcurrency,
      attempts: config.taskAttempts,
      backoffMs: config.taskBackoffMs,
      observe: (outcome, seconds) => metrics?.observe(outcome, seconds),
    });
    queue = memory;
  }
  const q = queue;
  metrics = registerTaskMetrics(deps.registry, () => q.depth());
  const service = new TaskService({
    queue: q,
    publish: deps.publish,
    maxDocumentBytes: config.taskMaxDocumentBytes,
    maxOpenPerUser: config.taskMaxOpenPerUser,
    maxQueued: config.taskMaxQueued,
    // Leaves the answer time to reach the caller before RPC_TIMEOUT_MS.
    cancelWaitMs: Math.max(0, Math.min(3_000, config.rpcTimeoutMs - 1_000)),
  });
  return {
    service,
    // /healthz names the queue as it always has; the port only says whether the fleet shares it.
    health: () => ({ enabled: true, queue: q.sharedAcrossInstances ? 'bullmq' : 'memory', ...q.health() }),
    depth: () => q.depth().then((d) => d.waiting + d.delayed),
    close: () => q.close(),
  };
}
