import { setMaxListeners } from 'node:events';
import { isTransientRedisError } from '@livebus/publisher';
import { type RedisClient, TASK_KEY_PREFIX, TASK_QUEUE_NAME, workersKey } from '@livebus/publisher/redis';
import { Job, WaitingError, Worker } from 'bullmq';
import { beforeDeadline } from '../../redis/before-deadline';
import { taskDefaults } from '../task-defaults';
import { TaskHandBackError } from '../task-failure';
import type { TaskJobData } from '../task-queue';
import { type TaskWorkOptions, taskWorkDefaults } from '../task-queue-options';
import { ABANDON_RETRY_MS, failAbandonedTask, runTask, type TaskRunOutcome } from '../task-runner';

/** How long the `task_stalled` line waits for the job's task and user before it goes without them. */
const STALLED_READ_MS = 1_000;

/** Options of {@link BullMqTaskWorker}. */
export interface BullMqTaskWorkerOptions extends TaskWorkOptions {
  /** A connection for BullMQ (`maxRetriesPerRequest: null`); it duplicates it for blocking reads. */
  connection: RedisClient;
  /** Writes this worker's heartbeat. */
  redis: RedisClient;
  /** Names the worker in heartbeats and in BullMQ's job records. */
  workerId: string;
  /**
   * How long a job stays locked without renewal (TASK_LOCK_MS), and how often the stalled check
   * runs: a worker that died mid-job loses its jobs to another worker up to about twice this
   * long after (the lock lapses, then the next check puts the job back). @default taskDefaults.lockMs (30 s)
   */
  lockMs?: number;
  /** @default 5_000 */
  heartbeatMs?: number;
}

/**
 * The worker process's side of the BullMQ queue: runs up to `concurrency` jobs with the
 * shared runner. A job whose worker died is moved back to wait by the stalled check of any
 * live worker once its lock expires (at most twice, then failed), and started again.
 */
export class BullMqTaskWorker {
  readonly #o: BullMqTaskWorkerOptions;
  readonly #worker: Worker<TaskJobData, TaskRunOutcome>;
  readonly #heartbeat: NodeJS.Timeout;
  /** The running jobs' task ids and the signals that stop an attempt whose job lock was lost. */
  readonly #running = new Map<string, { taskId: string; lost: AbortController }>();
  /** Jobs whose lock this worker lost in the last minute (their BullMQ errors are expected). */
  readonly #lost = new Set<string>();
  /** Aborted by close(): a given-up job's end is retried no more. */
  readonly #closing = new AbortController();

  constructor(options: BullMqTaskWorkerOptions) {
    this.#o = options;
    // Every given-up job's pending retry pause listens on it: any number of them, no leak warning.
    setMaxListeners(0, this.#closing.signal);
    const lockMs = options.lockMs ?? taskDefaults.lockMs;
    const attemptsOf = (job: Job) => job.opts.attempts ?? options.attempts ?? taskWorkDefaults.attempts;
    this.#worker = new Worker<TaskJobData, TaskRunOutcome>(
      TASK_QUEUE_NAME,
      async (job, token, signal) => {
        const started = performance.now();
        const seconds = () => (performance.now() - started) / 1000;
        const attempt = Math.max(1, job.attemptsStarted);
        const lost = new AbortController();
        const last = job.attemptsMade + 1 >= attemptsOf(job);
        if (job.id) this.#running.set(job.id, { taskId: job.data.task_id, lost });
        try {
          const outcome = await runTask(options.runner, job.data, {
            attempt,
            last,
            lost: lost.signal,
            ...(signal ? { signal } : {}),
          });
          options.observe?.(outcome, seconds());
          options.logger.info('task_finished', { task_id: job.data.task_id, uid: job.data.user_id, outcome, attempt });
          return outcome;
        } catch (error) {
          if (error instanceof TaskHandBackError) {
            // Back to wait without using up one of its attempts (attemptsMade), though the next
            // start counts in attemptsStarted (the task's `attempts`): another worker starts it again.
            await job.moveToWait(token);
            options.observe?.('handed_back', seconds());
            options.logger.info('task_handed_back', { task_id: job.data.task_id, attempt });
            throw new WaitingError();
          }
          // The last attempt is not retried: BullMQ fails the job, and `failed` below says so (task_given_up).
          if (last) throw error;
          options.observe?.('retried', seconds());
          options.logger.warn('task_retry', { task_id: job.data.task_id, attempt, error: String(error) });
          throw error;
        } finally {
          if (job.id && this.#running.get(job.id)?.lost === lost) this.#running.delete(job.id);
        }
      },
      {
        connection: options.connection,
        prefix: TASK_KEY_PREFIX,
        name: options.workerId,
        concurrency: options.concurrency ?? taskWorkDefaults.concurrency,
        lockDuration: lockMs,
        stalledInterval: lockMs,
        maxStalledCount: 2,
      },
    );
    this.#worker.on('error', (error) => {
      // Every failed reconnect attempt lands here while Redis is away; `redis_status` tells that story once.
      if (isTransientRedisError(error)) return;
      // A lost lock is `task_lock_lost`, once; BullMQ then repeats it at each renewal, and
      // refuses to finish the lost attempt ("Missing lock for job ...", or "Lock mismatch"
      // when the job was started again meanwhile), as it should.
      const jobId =
        /(?:could not renew lock for job|Missing (?:lock|key) for job|Lock mismatch for job) ([^\s.]+)/.exec(
          error.message,
        )?.[1];
      if (jobId && this.#lost.has(jobId)) return;
      options.logger.warn('task_worker_error', { error: String(error) });
    });
    // BullMQ names the job only; its task and user say whose work lost its worker (the id alone
    // when Redis does not answer that read within a second: this connection waits through outages).
    this.#worker.on('stalled', (jobId) => {
      beforeDeadline(Job.fromId<TaskJobData>(this.#worker, jobId), STALLED_READ_MS)
        .catch(() => undefined)
        .then((job) => {
          const task = job ? { task_id: job.data.task_id, uid: job.data.user_id } : {};
          options.logger.warn('task_stalled', { ...task, job_id: jobId });
        });
    });
    // The lock could not be renewed: it lapsed (Redis was away longer than TASK_LOCK_MS, or
    // this process froze), so the stalled check starts the job again, here or on another
    // worker. This attempt stops at its next checkpoint; the task store fences it meanwhile.
    this.#worker.on('lockRenewalFailed', (jobIds) => {
      for (const jobId of jobIds) {
        // BullMQ repeats the failure at each renewal of the lost attempt: a repeat is not the
        // loss of a later attempt of the job started here meanwhile (it would stop that one, and
        // log the loss twice); a later attempt that does lose its lock is fenced by the task store.
        if (this.#lost.has(jobId)) continue;
        // Its "could not renew lock" error follows: expected, also for a job whose attempt just
        // ended here (BullMQ renews until it has moved the job, which a Redis back empty refuses).
        this.#lost.add(jobId);
        setTimeout(() => this.#lost.delete(jobId), 60_000).unref();
        const running = this.#running.get(jobId);
        if (!running || running.lost.signal.aborted) continue;
        running.lost.abort();
        options.logger.warn('task_lock_lost', { task_id: running.taskId, job_id: jobId });
      }
    });
    this.#worker.on('failed', (job, error) => {
      // A job the runner did not end: it stalled too often, or its retries ran out outside the runner.
      if (!job || (job.attemptsMade < attemptsOf(job) && !/stalled/i.test(error.message))) return;
      options.logger.warn('task_given_up', {
        task_id: job.data.task_id,
        uid: job.data.user_id,
        job_id: job.id,
        attempts: job.attemptsMade,
        error: error.message,
      });
      // BullMQ removed the job (removeOnFail): nothing runs it again to tell, so this retries (until close()).
      const retry = {
        delaysMs: ABANDON_RETRY_MS,
        signal: this.#closing.signal,
        onError: (e: unknown) =>
          options.logger.warn('task_worker_error', { task_id: job.data.task_id, error: String(e) }),
      };
      failAbandonedTask(options.runner, job.data.task_id, `the job was given up: ${error.message}`, retry).then(
        (ended) => {
          if (ended) options.observe?.('failed', 0);
        },
        (e: unknown) => options.logger.warn('task_worker_error', { task_id: job.data.task_id, error: String(e) }),
      );
    });
    // A beat that fails is the next one's to make up; neither command's failure may go unhandled.
    const beat = () =>
      options.redis
        .zadd(workersKey, Date.now(), options.workerId)
        .then(() => options.redis.zremrangebyscore(workersKey, '-inf', Date.now() - 60_000))
        .catch(() => {});
    void beat();
    this.#heartbeat = setInterval(beat, options.heartbeatMs ?? 5_000);
    this.#heartbeat.unref();
  }

  /** Jobs running now. */
  get active(): number {
    // BullMQ has no public counter; the lock manager tracks exactly the jobs in flight.
    return (
      (
        this.#worker as unknown as { lockManager?: { getActiveJobCount?: () => number } }
      ).lockManager?.getActiveJobCount?.() ?? 0
    );
  }

  /**
   * Graceful stop: takes no new job, lets running ones finish, and when `graceMs` is
   * nearly spent hands the rest back to the queue (they stop at their next checkpoint).
   * A job that reaches no checkpoint in time is left to its lock, which lapses: the
   * stalled check of a live worker starts it again. Settles within `graceMs`, also when Redis
   * keeps its connections open and answers nothing (the connections are then left to the caller).
   */
  async close(graceMs: number): Promise<void> {
    const deadline = Date.now() + graceMs;
    this.#closing.abort();
    clearInterval(this.#heartbeat);
    // Not awaited: a Redis that does not answer must not hold the shutdown. A worker whose
    // entry stays is counted by the gateways until its last beat is a minute old.
    this.#o.redis.zrem(workersKey, this.#o.workerId).catch(() => {});
    // pause() takes no new job and waits for the running ones, without closing: BullMQ's
    // close() once started cannot be forced (a later close(true) returns the same wait).
    const handBackAt = setTimeout(() => this.#worker.cancelAllJobs('shutdown'), Math.max(0, graceMs - 1_500));
    let forceTimer: NodeJS.Timeout | undefined;
    const graceSpent = new Promise<false>((resolve) => {
      forceTimer = setTimeout(() => resolve(false), Math.max(0, graceMs - 250));
    });
    // A pause that fails (its connection erred) says nothing of the jobs: the grace decides then.
    const finished = this.#worker.pause().then(
      () => true,
      () => graceSpent,
    );
    const done = await Promise.race([finished, graceSpent]);
    clearTimeout(handBackAt);
    clearTimeout(forceTimer);
    // Forced when jobs still run: it stops renewing their locks and closes the connections. It
    // waits for Redis to take the connections' QUIT, so it gets what is left of the grace; past
    // it, BullMQ's connections (its own blocking one included) are dropped.
    const closed = await beforeDeadline(
      this.#worker.close(!done).then(
        () => true,
        () => true,
      ),
      deadline - Date.now(),
    );
    if (!closed) await beforeDeadline(this.#worker.disconnect(), 250).catch(() => {});
  }
}
