/**
 * The defaults of tasks (TASK.*), written once: EnvSchema (WORKER_CONCURRENCY, TASK_*),
 * the queues, the worker, the task stores and the document analysis all read them here.
 */
export const taskDefaults = {
  /** Jobs run at once by one worker (WORKER_CONCURRENCY). */
  concurrency: 2,
  /** Starts of a job before a transient failure is final (TASK_ATTEMPTS). */
  attempts: 3,
  /** First retry delay, doubled for each further retry (TASK_BACKOFF_MS). */
  backoffMs: 1_000,
  /** How long a job stays locked without renewal (TASK_LOCK_MS). */
  lockMs: 30_000,
  /** How long a task's record lives after its last change, in seconds (TASK_TTL_S): one day. */
  ttlS: 86_400,
  /** Largest document a task accepts (TASK_MAX_DOCUMENT_BYTES): 512 KiB. */
  maxDocumentBytes: 512 * 1024,
  /** Pause after each analysis stage, for tests and demos (TASK_STAGE_DELAY_MS). */
  stageDelayMs: 0,
  /**
   * Tasks one user may have queued or running at once (TASK_MAX_OPEN_PER_USER); a start past
   * it answers `rate_limited`. 0: no limit.
   */
  maxOpenPerUser: 10,
  /**
   * Jobs the queue may hold not yet running (waiting or delayed; TASK_MAX_QUEUED), each with
   * its document; a start past it answers `unavailable`. 0: no limit.
   */
  maxQueued: 1_000,
} as const;

/**
 * Highest TASK_MAX_OPEN_PER_USER allowed: every create of a task with the limit on reads each
 * task in its user's open-task set (up to this many) in one Redis script.
 */
export const MAX_OPEN_PER_USER_BOUND = 1_000;
