import { createHash } from 'node:crypto';
import { type RedisClient, TASK_KEY_PREFIX, TASK_QUEUE_NAME, workersKey } from '@livebus/publisher/redis';
import { type JobsOptions, Queue } from 'bullmq';
import type { QueueDepth, TaskJobData, TaskQueue, TaskQueueHealth } from './task-queue';
import { taskWorkDefaults } from './task-queue-options';
import type { TaskStore } from './task-store';

/** Options of {@link BullMqTaskQueue}. */
export interface BullMqTaskQueueOptions {
  /** A connection BullMQ may use for itself (it runs scripts and reads job state on it). */
  connection: RedisClient;
  /** Reads worker heartbeats (any client of the same Redis). */
  redis: RedisClient;
  store: TaskStore;
  /** TASK_ATTEMPTS. @default taskDefaults.attempts (3) */
  attempts?: number;
  /** TASK_BACKOFF_MS: first retry delay, doubled each time. @default taskDefaults.backoffMs (1 s) */
  backoffMs?: number;
  /** A worker is "seen" when its last heartbeat is younger than this. @default 15_000 */
  workerSeenMs?: number;
  /** How often the heartbeats are counted for /healthz. @default 2_000 */
  pollMs?: number;
}

/**
 * The gateway's side of the BullMQ queue: adds jobs (`livebus-gateway worker` processes run
 * them), removes ones not started, reports depth and how many workers are alive.
 */
export class BullMqTaskQueue implements TaskQueue {
  readonly sharedAcrossInstances = true;
  readonly store: TaskStore;
  readonly #queue: Queue<TaskJobData>;
  readonly #redis: RedisClient;
  readonly #jobOptions: JobsOptions;
  readonly #seenMs: number;
  readonly #timer: NodeJS.Timeout;
  #workers = 0;

  constructor(options: BullMqTaskQueueOptions) {
    this.store = options.store;
    this.#redis = options.redis;
    this.#queue = new Queue<TaskJobData>(TASK_QUEUE_NAME, {
      connection: options.connection,
      prefix: TASK_KEY_PREFIX,
    });
    this.#queue.on('error', () => {
      // The connection's owner logs its status; a failed add surfaces to the caller.
    });
    this.#jobOptions = bullMqJobOptions(options);
    this.#seenMs = options.workerSeenMs ?? 15_000;
    this.#timer = setInterval(() => void this.#countWorkers(), options.pollMs ?? 2_000);
    this.#timer.unref();
    void this.#countWorkers();
  }

  queueJobId(taskId: string, run: string): string {
    return bullMqJobId(taskId, run);
  }

  async enqueue(job: TaskJobData): Promise<void> {
    // BullMQ ignores an add whose jobId exists: a second start cannot run the job twice while it is
    // queued or running. Once it ended (and was removed) the task's record is final, so a start
    // does not queue it again, and a job queued by a start racing the end finds it ended and skips it.
    await this.#queue.add(job.kind, job, { ...this.#jobOptions, jobId: job.queue_job_id ?? bullMqJobId(job.task_id) });
  }

  async hasJob(queueJobId: string): Promise<boolean> {
    // BullMQ's hash of the job, from its add until it is removed as it ends (as the task store's scripts look).
    return (await this.#redis.exists(this.#queue.toKey(queueJobId))) === 1;
  }

  async remove(taskId: string, queueJobId?: string): Promise<void> {
    // Refused (0) for a job a worker holds: that worker finds the task cancelled.
    await this.#queue.remove(queueJobId ?? bullMqJobId(taskId));
  }

  async depth(): Promise<QueueDepth> {
    const c = await this.#queue.getJobCounts('wait', 'prioritized', 'active', 'delayed');
    return { waiting: (c.wait ?? 0) + (c.prioritized ?? 0), active: c.active ?? 0, delayed: c.delayed ?? 0 };
  }

  health(): TaskQueueHealth {
    return { workers: this.#workers };
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    await this.#queue.close().catch(() => {});
  }

  async #countWorkers(): Promise<void> {
    try {
      this.#workers = await this.#redis.zcount(workersKey, Date.now() - this.#seenMs, '+inf');
    } catch {
      // Redis away: keep the last count; /healthz shows redis: down anyway.
    }
  }
}

/**
 * The BullMQ job id of a run of a task: a hash, since BullMQ refuses ids with `:` or that look
 * like integers and a caller's job id may be either. Deterministic, so a second start of the
 * same run names the same job; `run` (the record's `created_at`) tells the runs of a task apart.
 * Without it, the id of gateways before runs had their own (records they wrote carry it).
 */
export function bullMqJobId(taskId: string, run?: string): string {
  const hash = createHash('sha256').update(taskId);
  if (run !== undefined) hash.update(`\n${run}`);
  return `t-${hash.digest('hex').slice(0, 32)}`;
}

/**
 * Retries with exponential backoff. A job is removed as soon as it ends, completed or failed: its
 * data holds the document (up to TASK_MAX_DOCUMENT_BYTES), which must not outlive the work, and
 * the task store keeps what is left to read (status, result, error) for TASK_TTL_S. (Kept for
 * an hour or a day, as before, finished jobs alone could hold 10 000 documents each.)
 */
export function bullMqJobOptions(options: { attempts?: number; backoffMs?: number }): JobsOptions {
  return {
    attempts: options.attempts ?? taskWorkDefaults.attempts,
    backoff: { type: 'exponential', delay: options.backoffMs ?? taskWorkDefaults.backoffMs },
    removeOnComplete: true,
    removeOnFail: true,
  };
}
