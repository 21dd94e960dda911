import { TaskHandBackError } from './task-failure';
import type { QueueDepth, TaskJobData, TaskQueue, TaskQueueHealth } from './task-queue';
import { type TaskWorkOptions, taskWorkDefaults } from './task-queue-options';
import { ABANDON_RETRY_MS, failAbandonedTask, runTask } from './task-runner';
import type { TaskStore } from './task-store';

/**
 * The embedded queue: jobs run in this process with the same runner, concurrency bound,
 * retries and backoff as BullMQ workers, so `npm start` shows tasks working without Redis.
 * Jobs live in memory: a restart loses queued and running ones (their snapshots too).
 */
export class MemoryTaskQueue implements TaskQueue {
  readonly sharedAcrossInstances = false;
  readonly store: TaskStore;
  readonly #o: TaskWorkOptions;
  readonly #waiting: { job: TaskJobData; attempt: number }[] = [];
  readonly #active = new Map<string, Promise<void>>();
  readonly #delayed = new Map<string, NodeJS.Timeout>();
  readonly #abort = new AbortController();
  #closed = false;

  constructor(store: TaskStore, options: TaskWorkOptions) {
    this.store = store;
    this.#o = options;
  }

  queueJobId(taskId: string, run: string): string {
    return `mem-${taskId}@${run}`;
  }

  async enqueue(job: TaskJobData): Promise<void> {
    if (this.#closed) throw new Error('the task queue is closed');
    if (this.hasJob(runOf(job))) return;
    this.#waiting.push({ job, attempt: 1 });
    this.#pump();
  }

  /** Whether the job of this run is here, waiting, delayed or running (the task store's count of open tasks asks). */
  hasJob(queueJobId: string): boolean {
    return (
      this.#active.has(queueJobId) ||
      this.#delayed.has(queueJobId) ||
      this.#waiting.some((w) => runOf(w.job) === queueJobId)
    );
  }

  async remove(taskId: string, queueJobId?: string): Promise<void> {
    const id = queueJobId ?? taskId;
    const i = this.#waiting.findIndex((w) => runOf(w.job) === id);
    if (i >= 0) this.#waiting.splice(i, 1);
    const timer = this.#delayed.get(id);
    if (timer) {
      clearTimeout(timer);
      this.#delayed.delete(id);
    }
  }

  async depth(): Promise<QueueDepth> {
    return { waiting: this.#waiting.length, active: this.#active.size, delayed: this.#delayed.size };
  }

  health(): TaskQueueHealth {
    return { workers: this.#closed ? 0 : 1 };
  }

  /** Stops taking jobs, asks running ones to stop at their next checkpoint, and waits for them. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const timer of this.#delayed.values()) clearTimeout(timer);
    this.#delayed.clear();
    this.#waiting.length = 0;
    this.#abort.abort();
    await Promise.allSettled(this.#active.values());
  }

  #pump(): void {
    const concurrency = this.#o.concurrency ?? taskWorkDefaults.concurrency;
    while (!this.#closed && this.#active.size < concurrency && this.#waiting.length > 0) {
      const next = this.#waiting.shift();
      if (!next) break;
      const id = runOf(next.job);
      const run = this.#run(next.job, next.attempt).finally(() => {
        this.#active.delete(id);
        this.#pump();
      });
      this.#active.set(id, run);
    }
  }

  async #run(job: TaskJobData, attempt: number): Promise<void> {
    const attempts = this.#o.attempts ?? taskWorkDefaults.attempts;
    const started = performance.now();
    const seconds = () => (performance.now() - started) / 1000;
    try {
      const outcome = await runTask(this.#o.runner, job, {
        attempt,
        last: attempt >= attempts,
        signal: this.#abort.signal,
      });
      this.#o.observe?.(outcome, seconds());
      this.#o.logger.info('task_finished', { task_id: job.task_id, uid: job.user_id, outcome, attempt });
    } catch (error) {
      if (error instanceof TaskHandBackError) {
        this.#o.observe?.('handed_back', seconds());
        return;
      }
      if (attempt >= attempts) return this.#giveUp(job, attempt, error);
      this.#o.observe?.('retried', seconds());
      const delay = (this.#o.backoffMs ?? taskWorkDefaults.backoffMs) * 2 ** (attempt - 1);
      this.#o.logger.warn('task_retry', { task_id: job.task_id, attempt, delay_ms: delay, error: String(error) });
      const timer = setTimeout(() => {
        this.#delayed.delete(runOf(job));
        if (this.#closed) return;
        this.#waiting.push({ job, attempt: attempt + 1 });
        this.#pump();
      }, delay);
      timer.unref();
      this.#delayed.set(runOf(job), timer);
    }
  }

  /**
   * A job whose last attempt threw is not run again (as BullMQ fails it): `task_given_up`, and the
   * task is ended as failed, or its end told again, by {@link failAbandonedTask} (retried until close()).
   */
  #giveUp(job: TaskJobData, attempts: number, error: unknown): void {
    const message = error instanceof Error ? error.message : String(error);
    const { logger } = this.#o;
    logger.warn('task_given_up', {
      task_id: job.task_id,
      uid: job.user_id,
      job_id: runOf(job),
      attempts,
      error: message,
    });
    const retry = {
      delaysMs: ABANDON_RETRY_MS,
      signal: this.#abort.signal,
      onError: (e: unknown) => logger.warn('task_worker_error', { task_id: job.task_id, error: String(e) }),
    };
    failAbandonedTask(this.#o.runner, job.task_id, `the job was given up: ${message}`, retry).then(
      (ended) => {
        if (ended) this.#o.observe?.('failed', 0);
      },
      (e: unknown) => logger.warn('task_worker_error', { task_id: job.task_id, error: String(e) }),
    );
  }
}

/**
 * A job's key in the queue: its run's id (a task started again after its record expired is
 * another run, queued beside an earlier run's job still here), else its task's (older callers).
 */
const runOf = (job: TaskJobData): string => job.queue_job_id ?? job.task_id;
