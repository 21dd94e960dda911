/** Codes a failed task carries in its `error_code`. */
export type TaskFailureCode =
  | 'document_too_large'
  | 'empty_document'
  /** A transient error outlived every retry (Redis away, a worker lost too often). */
  | 'attempts_exhausted'
  | 'internal';

/**
 * A task failed for a reason retrying will not change (bad input): it goes to `failed`
 * at once, with this code and message in its last progress update.
 */
export class TaskFailure extends Error {
  override readonly name = 'TaskFailure';
  readonly code: TaskFailureCode;

  constructor(code: TaskFailureCode, message: string, options: { cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.code = code;
  }
}

/** Thrown at a checkpoint of a task whose cancellation was requested; the runner reports `cancelled`. */
export class TaskCancelledError extends Error {
  override readonly name = 'TaskCancelledError';
  readonly code = 'cancelled';
}

/**
 * Thrown at a checkpoint when the worker is shutting down: the job goes back to the queue
 * for another worker, without using up an attempt.
 */
export class TaskHandBackError extends Error {
  override readonly name = 'TaskHandBackError';
  readonly code = 'handed_back';
}
